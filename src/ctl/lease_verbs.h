/*
 * dstmctl's verbs over dstmd's leases (lease_verbs.c). Each takes the
 * words after its name (argv[0] is the verb), parses its own options and
 * returns dstmctl's exit status: 0, 1 the daemon answered with an error,
 * 2 usage or no daemon.
 */
#ifndef DSTMCTL_LEASE_VERBS_H
#define DSTMCTL_LEASE_VERBS_H

#include <jansson.h>
#include <stdbool.h>

/*
 * One request to the daemon; the reason of a failure goes to stderr.
 * dstmctl's exit status: 0 with *res to free, 1 the daemon answered with
 * an error, 2 no daemon or no answer.
 */
int dstmctl_request(const char *path, const char *command, json_t *args, unsigned timeout_ms,
                    json_t **res);

int dstmctl_leases(const char *path, int argc, char **argv, bool as_json, unsigned timeout_ms);
int dstmctl_history(const char *path, int argc, char **argv, bool as_json, unsigned timeout_ms);

#endif
