#!/usr/bin/env bash
# Rebuild the sample image. The exact commands that produced the committed sample.bin and
# sample.map (Debian bookworm's gcc-arm-none-eabi; `apt-get install gcc-arm-none-eabi
# binutils-arm-none-eabi`). CI does not run this: the outputs are committed.
set -euo pipefail
cd "$(dirname "$0")"
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=soft -Os -ffreestanding -fno-common \
  -c sample.c -o sample.o
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -nostdlib -nostartfiles -T devkit.ld \
  -Wl,-Map=sample.map -Wl,--gc-sections -o sample.elf sample.o
arm-none-eabi-objcopy -O binary sample.elf sample.bin
rm -f sample.o sample.elf
arm-none-eabi-gcc --version | head -n 1
