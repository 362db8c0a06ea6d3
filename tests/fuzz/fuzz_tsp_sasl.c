/*
 * libFuzzer harness for the SASL steps of TSP (src/tsp/tsp_sasl.c over GNU
 * SASL), both sides: the server steps that dstmd and dstm-tep run on what a
 * client sends after "AUTHENTICATE <mech>", and the client steps that
 * dstm-client and dstmd (toward a TEP) run on a server's challenges. The
 * first byte picks the side and the mechanism; the rest is split at '\n'
 * into base64 tokens, one per step, as the session layer hands them over.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsp/tsp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const mechs[] = {"ANONYMOUS", "PLAIN", "DIGEST-MD5", "SCRAM-SHA-256"};

static struct tsp_sasl_server *ss;

static const char *
secret(void *arg, const char *user, const char *realm)
{
	(void)arg;
	(void)realm;
	return strcmp(user, "alice") == 0 ? "wonderland" : NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsp_sasl *s = NULL;
	const char *mech, *p, *end, *why = NULL;
	bool client;
	char *out = NULL;
	enum tsp_sasl_result r = TSP_SASL_CONTINUE;

	if (ss == NULL) {
		ss = tsp_sasl_server_new("dstm", "tsp", "dstmd.example", secret, NULL);
		if (ss == NULL)
			abort();
	}
	if (size < 1)
		return 0;
	mech = mechs[data[0] % 4];
	client = data[0] & 0x80;
	p = (const char *)data + 1;
	end = (const char *)data + size;

	if (client) {
		if (tsp_sasl_client_start(mech, "alice", "wonderland", "tsp", "dstmd.example",
		                          &s) != 0)
			return 0;
		/* A client speaks first (seed 001 C §4.1: the initial response). */
		r = tsp_sasl_step(s, NULL, 0, &out, &why);
		free(out);
		out = NULL;
	} else {
		if (!tsp_sasl_server_supports(ss, mech) || tsp_sasl_server_start(ss, mech, &s) != 0)
			return 0;
	}
	for (unsigned n = 0; n < 16 && r == TSP_SASL_CONTINUE && p <= end; n++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		r = tsp_sasl_step(s, p, len, &out, &why);
		if (r == TSP_SASL_FAIL && why == NULL)
			abort(); /* every failure says why */
		free(out);
		out = NULL;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (!client && r == TSP_SASL_DONE && strcmp(mech, "ANONYMOUS") != 0 &&
	    tsp_sasl_user(s) == NULL)
		abort(); /* authenticated, but as nobody */
	tsp_sasl_free(s);
	return 0;
}
