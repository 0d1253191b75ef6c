/* A stand-in for Windows' bcryptprimitives.dll, which Wine 8.0 (Debian
 * bookworm) lacks and Go 1.24 and later load at start for ProcessPrng:
 * it fills the buffer from RtlGenRandom (advapi32's SystemFunction036).
 * Only for running popspool's Windows binaries under Wine (spooltest/wine);
 * Windows 10 and later have the real DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
