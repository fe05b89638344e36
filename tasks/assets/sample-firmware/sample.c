/*
 * DevKit DPS sample image: a tiny Cortex-M4 program laid out like a DevKit DPS sketch build.
 *
 * It exists so that `devkit provision --simulate` (and tests) have a firmware image + linker
 * map with the DevKit's memory layout and the two RIoT regions the device measures at boot:
 *   .riot_core  the DICE/RIoT core (its bytes feed the CDI),
 *   .riot_fw    the "firmware" the alias key is bound to (its SHA-256 is the FWID).
 * The virtual DevKit never executes it; the identity is computed from its bytes.
 * Rebuild with ./build.sh (arm-none-eabi-gcc from Debian); CI uses the committed .bin/.map.
 */
#include <stdint.h>

extern uint32_t __stack_top;
void Reset_Handler(void);

/* Vector table at the start of the application (0x0800C000). */
__attribute__((section(".isr_vector"), used))
const void *const vector_table[2] = { &__stack_top, (const void *)Reset_Handler };

/* --- RIoT core: stand-ins for the DICE layer (hash, KDF, key derivation) --- */
__attribute__((section(".riot_core"), noinline, used))
uint32_t riot_core_mix(uint32_t a, uint32_t b)
{
    a ^= b + 0x9e3779b9u + (a << 6) + (a >> 2);
    return (a << 13) | (a >> 19);
}

__attribute__((section(".riot_core"), noinline, used))
uint32_t riot_core_digest(const uint8_t *p, uint32_t n)
{
    uint32_t h = 0x6a09e667u;
    for (uint32_t i = 0; i < n; i++)
        h = riot_core_mix(h, p[i]);
    return h;
}

__attribute__((section(".riot_core"), noinline, used))
uint32_t riot_core_start(const uint8_t *uds, uint32_t len)
{
    return riot_core_digest(uds, len) ^ riot_core_digest((const uint8_t *)riot_core_mix, 64);
}

/* --- RIoT firmware: the code the alias identity is bound to (FWID) --- */
__attribute__((section(".riot_fw"), noinline, used))
uint32_t riot_fw_version(void)
{
    return (1u << 16) | (6u << 8) | 2u; /* 1.6.2 */
}

__attribute__((section(".riot_fw"), noinline, used))
uint32_t riot_fw_main(uint32_t cdi)
{
    return riot_core_mix(cdi, riot_fw_version());
}

/* --- the rest of the sketch: changes here do not change the identity --- */
static volatile uint32_t sink;

void Reset_Handler(void)
{
    static const uint8_t uds[32] = { 0 };
    uint32_t cdi = riot_core_start(uds, sizeof uds);
    for (;;)
        sink = riot_fw_main(cdi);
}
