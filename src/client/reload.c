/*
 * dstm-client's SIGHUP: re-read the configuration file and take from it
 * what can change while the client holds a lease — the TSP credentials
 * ("auth": mechanism, user, secret), "timeout" and "backoff_max" for the
 * next connection, and "log_level" at once; the lease, the tunnel
 * interface and the session stay.
 * Anything else (server, access, addresses, interface, routes, TLS, DHCPv6)
 * needs a restart: the reload is refused with file:line and the client
 * runs on as it was. Kept apart from the client's main so that the rule of
 * what may change reads in one place.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "common/cfg.h"
#include "common/log.h"

/* `c` as JSON with what a reload may change set to `from`'s. */
static json_t *
fixed_part(const struct client_config *c, const struct client_config *from)
{
	struct client_config *x = malloc(sizeof(*x));
	char *text;
	json_t *o;

	if (!x)
		return NULL;
	*x = *c;
	memcpy(x->mechanism, from->mechanism, sizeof(x->mechanism));
	memcpy(x->user, from->user, sizeof(x->user));
	memcpy(x->secret, from->secret, sizeof(x->secret));
	x->timeout = from->timeout;
	x->backoff_max = from->backoff_max;
	x->log_level = from->log_level;
	text = client_config_dump(x);
	free(x);
	o = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return o;
}

static void
log_errors(struct cfg *cfg)
{
	char *text = NULL, *save = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	cfg_print_errors(cfg, f);
	fclose(f);
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		log_warnx("%s", l);
	free(text);
}

int
client_config_reload(const char *path, struct client_config *cur)
{
	struct client_config *nc = calloc(1, sizeof(*nc));
	json_t *a = NULL, *b = NULL;
	struct cfg *cfg = NULL;
	char err[512];
	int bad = 0;

	if (!nc)
		return -ENOMEM;
	if (!(cfg = cfg_load(path, err, sizeof(err)))) {
		log_warnx("%s", err);
		bad = 1;
		goto out;
	}
	if (client_config_parse(cfg, nc) > 0) {
		log_errors(cfg);
		bad = 1;
		goto out;
	}
	a = fixed_part(cur, cur);
	b = fixed_part(nc, cur);
	if (!a || !b) {
		bad = 1;
		goto out;
	}
	if ((bad = cfg_fixed_changes(cfg, path, "dstm-client", a, b)))
		goto out;
	memcpy(cur->mechanism, nc->mechanism, sizeof(cur->mechanism));
	memcpy(cur->user, nc->user, sizeof(cur->user));
	memcpy(cur->secret, nc->secret, sizeof(cur->secret));
	cur->timeout = nc->timeout;
	cur->backoff_max = nc->backoff_max;
	cur->log_level = nc->log_level;
out:
	json_decref(a);
	json_decref(b);
	cfg_free(cfg);
	/* The secret must not linger in freed memory. */
	explicit_bzero(nc, sizeof(*nc));
	free(nc);
	if (bad) {
		log_warnx("reload refused: still running with the configuration loaded before");
		return -EINVAL;
	}
	log_info("configuration reloaded: mechanism %s, timeout %us, backoff_max %us, log_level %d",
	         cur->mechanism, cur->timeout, cur->backoff_max, cur->log_level);
	return 0;
}
