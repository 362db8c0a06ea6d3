/*
 * What the two harnesses of the TSP server machine share (fuzz_tsp_server.c
 * over a stream, fuzz_tsp_udp.c over datagrams): the server's configuration,
 * small limits so that the fuzzer reaches them, PLAIN allowed without TLS
 * and the mechanisms each harness names.
 */
#ifndef DSTM_TSP_FUZZ_H
#define DSTM_TSP_FUZZ_H

#include <string.h>

#include "tsp/tsp.h"

static inline void
tsp_fuzz_config(struct tsp_server_config *cfg, const char *mechanisms, tsp_secret_fn secret)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->limits.line_max = 512;
	cfg->limits.content_max = 4096;
	cfg->limits.xml_depth = 8;
	cfg->mechanisms = mechanisms;
	cfg->plain_without_tls = true;
	cfg->realm = "dstm";
	cfg->service = "tsp";
	cfg->hostname = "dstmd.example";
	cfg->secret = secret;
}

#endif
