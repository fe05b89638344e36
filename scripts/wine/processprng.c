/* A stand-in for Windows' bcryptprimitives.dll, for running under Wine 8 only (which lacks it;
 * Windows 10+ and Wine 9+ have it): Rust's standard library (and getrandom) import ProcessPrng
 * from it. Forwards to BCryptGenRandom with the system RNG, which Wine 8 implements. Built by
 * scripts/test-windows-wine with MinGW and put into the throw-away Wine prefix; never shipped. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
