/*
 * dstmctl's verbs over dstmd's leases (lease_verbs.c). Each takes the
 * words after its name (argv[0] is the verb), parses its own options and
 * returns dstmctl's exit status: 0, 1 the daemon answered with an error,
 * 2 usage or no daemon.
 */
#ifndef DSTMCTL_LEASE_VERBS_H
#define DSTMCTL_LEASE_VERBS_H

#include <stdbool.h>

int dstmctl_leases(const char *path, int argc, char **argv, bool as_json, unsigned timeout_ms);
int dstmctl_history(const char *path, int argc, char **argv, bool as_json, unsigned timeout_ms);

#endif
