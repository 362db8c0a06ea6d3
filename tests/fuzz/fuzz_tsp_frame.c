/*
 * libFuzzer harness for the TSP framer (src/tsp/tsp_frame.c): the input is
 * split into frames in both phases, as a session would, and every frame
 * found must lie inside the input; content frames also go through
 * tsp_split_status and line-phase decisions run on lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsp/tsp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct tsp_limits lim = {.line_max = 128, .content_max = 512, .xml_depth = 8};
	const char *p = (const char *)data;
	bool content = size > 0 && (data[0] & 1);

	for (unsigned n = 0; n < 4096 && size > 0; n++) {
		struct tsp_frame f;
		size_t used;
		char tok[64];
		int code;
		const char *xml;
		size_t xl;

		tsp_frame_next(&lim, content, p, size, &f, &used);
		if (f.kind == TSP_FRAME_NEED_MORE || f.kind == TSP_FRAME_ERROR) {
			if (f.kind == TSP_FRAME_ERROR && f.error == NULL)
				abort();
			break;
		}
		if (used == 0 || used > size || f.data < p || f.data + f.len > p + used)
			abort();
		if (f.kind == TSP_FRAME_LINE) {
			(void)tsp_parse_version(f.data, f.len, tok, sizeof(tok));
			(void)tsp_parse_authenticate(f.data, f.len, tok, sizeof(tok));
			(void)tsp_capability_offers(f.data, f.len, "SCRAM-SHA-256");
			(void)tsp_line_is_status(f.data, f.len, &code);
			/* a session switches phase after the "OK" line */
			if (f.len == 2 && memcmp(f.data, "OK", 2) == 0)
				content = true;
		} else if (tsp_split_status(f.data, f.len, &code, &xml, &xl) == 0) {
			if (xml < f.data || xml + xl != f.data + f.len)
				abort();
		}
		p += used;
		size -= used;
	}
	return 0;
}
