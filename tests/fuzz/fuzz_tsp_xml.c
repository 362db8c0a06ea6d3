/*
 * libFuzzer harness for the <tunnel> parser (src/tsp/tsp_xml.c): whatever
 * parses must format again, and the formatted document must parse to the
 * same message (the codec's round trip).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsp/tsp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsp_tunnel t, u;
	char err[128], buf[8192];
	int n;

	if (tsp_xml_parse((const char *)data, size, 16, &t, err, sizeof(err)) < 0) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	n = tsp_xml_format(&t, buf, sizeof(buf));
	if (n < 0)
		abort();
	if (tsp_xml_parse(buf, (size_t)n, 16, &u, err, sizeof(err)) < 0)
		abort();
	/* the type is kept verbatim but an empty one formats as v4v6 */
	if (t.type[0] == '\0')
		strcpy(t.type, "v4v6");
	if (memcmp(&t.client, &u.client, sizeof(t.client)) != 0 ||
	    memcmp(&t.server, &u.server, sizeof(t.server)) != 0 || t.action != u.action ||
	    t.lifetime != u.lifetime || t.nbrokers != u.nbrokers)
		abort();
	return 0;
}
