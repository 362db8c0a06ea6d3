/*
 * libFuzzer harness for the TSP framer (src/tsp/tsp_frame.c): the input is
 * split into frames in both phases, as a session would, and every frame
 * found must lie inside the input; content frames also go through
 * tsp_split_status and line-phase decisions run on lines. The input also
 * goes through the RFC 5572 UDP header codec (parse, then format back to
 * the same bytes), the raw-line framer of PLAIN's initial response and the
 * DIGEST-MD5 challenge tidier.
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
	struct tsp_udp_hdr h;
	const char *msg;
	size_t msglen;

	/* The same bytes as a TSP-over-UDP datagram (RFC 5572 §3 header). */
	if (tsp_udp_parse(data, size, &h, &msg, &msglen) == 0) {
		uint8_t hdr[TSP_UDP_HDR_LEN];

		if (msg != p + TSP_UDP_HDR_LEN || msglen != size - TSP_UDP_HDR_LEN ||
		    h.seq > 0x0fffffffu)
			abort();
		tsp_udp_header(&h, hdr);
		if (memcmp(hdr, data, TSP_UDP_HDR_LEN) != 0)
			abort();
	}
	/* ... and as PLAIN's raw initial response and a DIGEST-MD5 list. */
	{
		struct tsp_frame f;
		size_t used, rawlen;
		char raw[256], *tidy = malloc(size + 1);

		tsp_frame_raw_line(&lim, p, size, &f, &used);
		if (f.kind == TSP_FRAME_LINE) {
			if (used == 0 || used > size || f.data < p || f.data + f.len > p + used)
				abort();
			if (tsp_plain_initial(f.data, f.len, raw, sizeof(raw), &rawlen) == 0 &&
			    rawlen > sizeof(raw))
				abort();
		}
		if (tidy == NULL || tsp_digest_tidy(p, size, tidy) > size)
			abort();
		free(tidy);
	}

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
