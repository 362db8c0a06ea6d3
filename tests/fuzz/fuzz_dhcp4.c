/*
 * libFuzzer harness for the DHCPv4 codec: d4_parse() on arbitrary bytes,
 * then RFC 3396 concatenation of every option code, which walks all three
 * option areas. Sanitizers catch any read outside the input.
 */
#include <stddef.h>
#include <stdint.h>

#include "dhcp4/dhcp4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[65536];
	struct d4_msg m;
	size_t n;

	if (d4_parse(data, size, &m) < 0)
		return 0;
	for (unsigned code = 1; code < 255; code++) {
		if (d4_opt_get(&m, (uint8_t)code, out, sizeof(out), &n) == 0 && n > sizeof(out))
			__builtin_trap();
		(void)d4_opt_count(&m, (uint8_t)code);
	}
	return 0;
}
