/*
 * SASL for TSP through GNU SASL (RFC 5572 §4.1; DESIGN §3.1): PLAIN,
 * DIGEST-MD5 (RFC 2831, md5-sess; the digest-uri is the one the client
 * sends) and SCRAM-SHA-256, server and client side, one token per step,
 * base64 on the wire. ANONYMOUS carries no token in TSP (seed 001 C
 * §4.1) and is handled by the session machines, not here.
 *
 * SCRAM-SHA-256 on the server: 4096 iterations; the salt is derived per
 * user, deterministically, as HMAC-SHA-256(key, realm NUL user) cut to 16
 * bytes with a key drawn at random when the server starts. A user thus
 * keeps one salt for the life of the process, which lets us cache the
 * derived StoredKey/ServerKey (checked against a hash of the current
 * password) instead of running PBKDF2 on every login; the client side
 * caches its salted password the same way.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hash.h"
#include "common/log.h"
#include "tsp/tsp_int.h"

#define SCRAM_ITER        "4096"
#define SCRAM_SALT_LEN    16
#define SCRAM_CACHE_SIZE  1024 /* entries, direct-mapped by a hash of the user */
#define SCRAM_KEY_STR_MAX 128

struct scram_cache_entry {
	bool used;
	char user[TSP_DN_MAX];
	char salt[64];              /* base64 salt the keys belong to */
	unsigned char pwhash[32];   /* SHA-256 of the password they came from */
	char k1[SCRAM_KEY_STR_MAX]; /* server: ServerKey; client: salted password */
	char k2[SCRAM_KEY_STR_MAX]; /* server: StoredKey */
};

struct tsp_sasl_server {
	Gsasl *ctx;
	char *realm, *service, *hostname;
	tsp_secret_fn secret;
	void *secret_arg;
	unsigned char salt_key[32];
	struct scram_cache_entry *cache;
};

struct tsp_sasl {
	Gsasl_session *s;
	struct tsp_sasl_server *ss; /* NULL on the client side */
	char mech[32];
	char *user, *secret, *service, *hostname; /* client side */
	bool scram, digest;
	unsigned steps; /* gsasl_step() calls so far */
};

/*
 * The client side shares one GNU SASL context and one cache for the life
 * of the process, so that sessions that come and go keep the cache.
 */
static Gsasl *client_ctx;
static struct scram_cache_entry *client_cache;

static void
sha256(const char *s, unsigned char out[32])
{
	unsigned int n = 32;

	EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

static struct scram_cache_entry *
cache_slot(struct scram_cache_entry *cache, const char *user)
{
	return cache ? &cache[hash_str(user) % SCRAM_CACHE_SIZE] : NULL; /* keyed: common/hash.h */
}

static bool
cache_hit(const struct scram_cache_entry *e, const char *user, const char *salt,
          const unsigned char pwhash[32])
{
	return e && e->used && strcmp(e->user, user) == 0 && strcmp(e->salt, salt) == 0 &&
	       CRYPTO_memcmp(e->pwhash, pwhash, 32) == 0;
}

static void
cache_store(struct scram_cache_entry *e, const char *user, const char *salt,
            const unsigned char pwhash[32], const char *k1, const char *k2)
{
	if (e == NULL || strlen(user) >= sizeof(e->user) || strlen(salt) >= sizeof(e->salt) ||
	    strlen(k1) >= sizeof(e->k1) || (k2 && strlen(k2) >= sizeof(e->k2)))
		return;
	e->used = true;
	strcpy(e->user, user);
	strcpy(e->salt, salt);
	memcpy(e->pwhash, pwhash, 32);
	strcpy(e->k1, k1);
	strcpy(e->k2, k2 ? k2 : "");
}

/* ---- server ---- */

static const char *
server_secret(struct tsp_sasl_server *ss, Gsasl_session *sctx)
{
	const char *user = gsasl_property_fast(sctx, GSASL_AUTHID);
	const char *realm = gsasl_property_fast(sctx, GSASL_REALM);

	if (user == NULL || ss->secret == NULL)
		return NULL;
	return ss->secret(ss->secret_arg, user, realm ? realm : ss->realm);
}

static int
scram_salt(struct tsp_sasl_server *ss, Gsasl_session *sctx)
{
	const char *user = gsasl_property_fast(sctx, GSASL_AUTHID);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *msg, *b64 = NULL;
	size_t rl, ul;
	int rc;

	if (user == NULL)
		return GSASL_NO_AUTHID;
	rl = strlen(ss->realm);
	ul = strlen(user);
	msg = malloc(rl + ul + 1);
	if (msg == NULL)
		return GSASL_MALLOC_ERROR;
	memcpy(msg, ss->realm, rl);
	msg[rl] = '\0';
	memcpy(msg + rl + 1, user, ul);
	if (HMAC(EVP_sha256(), ss->salt_key, sizeof(ss->salt_key), (unsigned char *)msg,
	         rl + ul + 1, mac, &maclen) == NULL) {
		free(msg);
		return GSASL_CRYPTO_ERROR;
	}
	free(msg);
	rc = gsasl_base64_to((const char *)mac, SCRAM_SALT_LEN, &b64, NULL);
	if (rc != GSASL_OK)
		return rc;
	gsasl_property_set(sctx, GSASL_SCRAM_SALT, b64);
	gsasl_free(b64);
	return GSASL_OK;
}

static int
scram_server_keys(struct tsp_sasl_server *ss, Gsasl_session *sctx)
{
	const char *user = gsasl_property_fast(sctx, GSASL_AUTHID);
	const char *salt = gsasl_property_fast(sctx, GSASL_SCRAM_SALT);
	const char *pw = server_secret(ss, sctx);
	struct scram_cache_entry *e;
	unsigned char h[32];

	if (user == NULL || salt == NULL || pw == NULL)
		return GSASL_NO_CALLBACK;
	sha256(pw, h);
	e = cache_slot(ss->cache, user);
	if (!cache_hit(e, user, salt, h))
		return GSASL_NO_CALLBACK; /* GNU SASL derives them from the password */
	gsasl_property_set(sctx, GSASL_SCRAM_SERVERKEY, e->k1);
	gsasl_property_set(sctx, GSASL_SCRAM_STOREDKEY, e->k2);
	return GSASL_OK;
}

static int
validate_plain(struct tsp_sasl_server *ss, Gsasl_session *sctx)
{
	const char *given = gsasl_property_fast(sctx, GSASL_PASSWORD);
	const char *authzid = gsasl_property_fast(sctx, GSASL_AUTHZID);
	const char *authid = gsasl_property_fast(sctx, GSASL_AUTHID);
	const char *pw;
	size_t n;

	/* Nobody may act for somebody else. */
	if (authzid != NULL && authzid[0] != '\0' && (authid == NULL || strcmp(authzid, authid)))
		return GSASL_AUTHENTICATION_ERROR;
	pw = server_secret(ss, sctx);
	if (pw == NULL || given == NULL)
		return GSASL_AUTHENTICATION_ERROR;
	n = strlen(pw);
	if (strlen(given) != n || CRYPTO_memcmp(pw, given, n) != 0)
		return GSASL_AUTHENTICATION_ERROR;
	return GSASL_OK;
}

static int
server_cb(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
	struct tsp_sasl_server *ss = gsasl_callback_hook_get(ctx);
	const char *pw;

	switch (prop) {
	case GSASL_PASSWORD:
		pw = server_secret(ss, sctx);
		if (pw == NULL)
			return GSASL_NO_PASSWORD;
		gsasl_property_set(sctx, GSASL_PASSWORD, pw);
		return GSASL_OK;
	case GSASL_VALIDATE_SIMPLE:
		return validate_plain(ss, sctx);
	case GSASL_REALM:
		gsasl_property_set(sctx, GSASL_REALM, ss->realm);
		return GSASL_OK;
	case GSASL_QOPS:
		gsasl_property_set(sctx, GSASL_QOPS, "qop-auth");
		return GSASL_OK;
	case GSASL_SERVICE:
		gsasl_property_set(sctx, GSASL_SERVICE, ss->service);
		return GSASL_OK;
	case GSASL_HOSTNAME:
		gsasl_property_set(sctx, GSASL_HOSTNAME, ss->hostname);
		return GSASL_OK;
	case GSASL_SCRAM_ITER:
		gsasl_property_set(sctx, GSASL_SCRAM_ITER, SCRAM_ITER);
		return GSASL_OK;
	case GSASL_SCRAM_SALT:
		return scram_salt(ss, sctx);
	case GSASL_SCRAM_SERVERKEY:
		return scram_server_keys(ss, sctx);
	default:
		return GSASL_NO_CALLBACK;
	}
}

struct tsp_sasl_server *
tsp_sasl_server_new(const char *realm, const char *service, const char *hostname,
                    tsp_secret_fn secret, void *secret_arg)
{
	struct tsp_sasl_server *ss = calloc(1, sizeof(*ss));

	if (ss == NULL)
		return NULL;
	ss->realm = strdup(realm ? realm : "dstm");
	ss->service = strdup(service ? service : "tsp");
	ss->hostname = strdup(hostname ? hostname : "localhost");
	ss->cache = calloc(SCRAM_CACHE_SIZE, sizeof(*ss->cache));
	ss->secret = secret;
	ss->secret_arg = secret_arg;
	if (!ss->realm || !ss->service || !ss->hostname || !ss->cache ||
	    gsasl_init(&ss->ctx) != GSASL_OK ||
	    gsasl_random((char *)ss->salt_key, sizeof(ss->salt_key)) != GSASL_OK) {
		tsp_sasl_server_free(ss);
		return NULL;
	}
	gsasl_callback_set(ss->ctx, server_cb);
	gsasl_callback_hook_set(ss->ctx, ss);
	return ss;
}

void
tsp_sasl_server_free(struct tsp_sasl_server *ss)
{
	if (ss == NULL)
		return;
	if (ss->ctx)
		gsasl_done(ss->ctx);
	free(ss->realm);
	free(ss->service);
	free(ss->hostname);
	if (ss->cache)
		OPENSSL_cleanse(ss->cache, SCRAM_CACHE_SIZE * sizeof(*ss->cache));
	free(ss->cache);
	free(ss);
}

bool
tsp_sasl_server_supports(struct tsp_sasl_server *ss, const char *mech)
{
	return gsasl_server_support_p(ss->ctx, mech) != 0;
}

int
tsp_sasl_server_start(struct tsp_sasl_server *ss, const char *mech, struct tsp_sasl **out)
{
	struct tsp_sasl *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	if (strlen(mech) >= sizeof(s->mech) ||
	    gsasl_server_start(ss->ctx, mech, &s->s) != GSASL_OK) {
		free(s);
		return -ENOTSUP;
	}
	strcpy(s->mech, mech);
	s->ss = ss;
	s->scram = strncasecmp(mech, "SCRAM-", 6) == 0;
	s->digest = strcasecmp(mech, "DIGEST-MD5") == 0;
	gsasl_session_hook_set(s->s, s);
	*out = s;
	return 0;
}

/* ---- client ---- */

static int
client_cb(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
	struct tsp_sasl *s = gsasl_session_hook_get(sctx);
	const char *salt, *iter;
	struct scram_cache_entry *e;
	unsigned char h[32];
	char key[TSP_DN_MAX + 32];

	(void)ctx;
	if (s == NULL)
		return GSASL_NO_CALLBACK;
	switch (prop) {
	case GSASL_AUTHID:
		if (s->user == NULL)
			return GSASL_NO_AUTHID;
		gsasl_property_set(sctx, GSASL_AUTHID, s->user);
		return GSASL_OK;
	case GSASL_PASSWORD:
		if (s->secret == NULL)
			return GSASL_NO_PASSWORD;
		gsasl_property_set(sctx, GSASL_PASSWORD, s->secret);
		return GSASL_OK;
	case GSASL_SERVICE:
		gsasl_property_set(sctx, GSASL_SERVICE, s->service);
		return GSASL_OK;
	case GSASL_HOSTNAME:
		gsasl_property_set(sctx, GSASL_HOSTNAME, s->hostname);
		return GSASL_OK;
	case GSASL_QOP:
		gsasl_property_set(sctx, GSASL_QOP, "qop-auth");
		return GSASL_OK;
	case GSASL_SCRAM_SALTED_PASSWORD:
		salt = gsasl_property_fast(sctx, GSASL_SCRAM_SALT);
		iter = gsasl_property_fast(sctx, GSASL_SCRAM_ITER);
		if (salt == NULL || iter == NULL || s->user == NULL || s->secret == NULL)
			return GSASL_NO_CALLBACK;
		snprintf(key, sizeof(key), "%s:%s", iter, salt);
		sha256(s->secret, h);
		e = cache_slot(client_cache, s->user);
		if (!cache_hit(e, s->user, key, h))
			return GSASL_NO_CALLBACK;
		gsasl_property_set(sctx, GSASL_SCRAM_SALTED_PASSWORD, e->k1);
		return GSASL_OK;
	default:
		return GSASL_NO_CALLBACK;
	}
}

int
tsp_sasl_client_start(const char *mech, const char *user, const char *secret, const char *service,
                      const char *hostname, struct tsp_sasl **out)
{
	struct tsp_sasl *s;

	if (client_ctx == NULL) {
		if (gsasl_init(&client_ctx) != GSASL_OK) {
			client_ctx = NULL;
			return -ENOMEM;
		}
		gsasl_callback_set(client_ctx, client_cb);
		client_cache = calloc(SCRAM_CACHE_SIZE, sizeof(*client_cache));
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->user = user ? strdup(user) : NULL;
	s->secret = secret ? strdup(secret) : NULL;
	s->service = strdup(service ? service : "tsp");
	s->hostname = strdup(hostname ? hostname : "localhost");
	if (strlen(mech) >= sizeof(s->mech) || !s->service || !s->hostname ||
	    gsasl_client_start(client_ctx, mech, &s->s) != GSASL_OK) {
		s->s = NULL;
		tsp_sasl_free(s);
		return -ENOTSUP;
	}
	strcpy(s->mech, mech);
	s->scram = strncasecmp(mech, "SCRAM-", 6) == 0;
	s->digest = strcasecmp(mech, "DIGEST-MD5") == 0;
	gsasl_session_hook_set(s->s, s);
	*out = s;
	return 0;
}

/* ---- both ---- */

static void
remember_scram(struct tsp_sasl *s)
{
	unsigned char h[32];
	char key[TSP_DN_MAX + 32];

	if (s->ss) {
		const char *user = gsasl_property_fast(s->s, GSASL_AUTHID);
		const char *salt = gsasl_property_fast(s->s, GSASL_SCRAM_SALT);
		const char *sk = gsasl_property_fast(s->s, GSASL_SCRAM_SERVERKEY);
		const char *st = gsasl_property_fast(s->s, GSASL_SCRAM_STOREDKEY);
		const char *pw = gsasl_property_fast(s->s, GSASL_PASSWORD);

		/* Only keys derived in this exchange from the password we hold. */
		if (!user || !salt || !sk || !st || !pw)
			return;
		sha256(pw, h);
		cache_store(cache_slot(s->ss->cache, user), user, salt, h, sk, st);
	} else {
		const char *salt = gsasl_property_fast(s->s, GSASL_SCRAM_SALT);
		const char *iter = gsasl_property_fast(s->s, GSASL_SCRAM_ITER);
		const char *sp = gsasl_property_fast(s->s, GSASL_SCRAM_SALTED_PASSWORD);

		if (!salt || !iter || !sp || !s->user || !s->secret)
			return;
		snprintf(key, sizeof(key), "%s:%s", iter, salt);
		sha256(s->secret, h);
		cache_store(cache_slot(client_cache, s->user), s->user, key, h, sp, NULL);
	}
}

/*
 * RFC 2831 §7.1 allows blanks around the commas of a directive list, and
 * GNU SASL writes ", ". Deployed TSP clients split the challenge on ","
 * alone and then look the directive names up verbatim (" nonce" is no
 * name to them), so the server's challenge goes out with every blank
 * outside a quoted string next to a comma removed.
 */
size_t
tsp_digest_tidy(const char *in, size_t inlen, char *out)
{
	bool quoted = false, esc = false;
	size_t n = 0;

	for (size_t i = 0; i < inlen; i++) {
		char ch = in[i];

		if (quoted) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				quoted = false;
			out[n++] = ch;
			continue;
		}
		if (ch == '"') {
			quoted = true;
		} else if (ch == ' ' || ch == '\t') {
			size_t j = i;

			/* A blank run that touches a comma on either side goes. */
			while (j < inlen && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if ((n > 0 && out[n - 1] == ',') || (j < inlen && in[j] == ','))
				continue;
		}
		out[n++] = ch;
	}
	return n;
}

/*
 * PLAIN's initial response as deployed clients send it, unasked, right
 * after "AUTHENTICATE PLAIN": the raw "authzid NUL authcid NUL passwd"
 * bytes (the framer has already eaten the NULs in front, which were the
 * empty authzid and the NUL that ends their AUTHENTICATE line), or the
 * same in base64. Gives the raw message GNU SASL's PLAIN takes.
 */
int
tsp_plain_initial(const char *line, size_t len, char *raw, size_t rawmax, size_t *rawlen)
{
	const char *nul = memchr(line, '\0', len);
	char *dec = NULL;
	size_t declen = 0;

	if (nul != NULL) {
		/* One NUL: "authcid NUL passwd", the authzid was empty. */
		bool two = memchr(nul + 1, '\0', len - (size_t)(nul + 1 - line)) != NULL;
		size_t need = len + (two ? 0 : 1);

		if (need > rawmax)
			return -EMSGSIZE;
		if (!two)
			raw[0] = '\0';
		memcpy(raw + (two ? 0 : 1), line, len);
		*rawlen = need;
		return 0;
	}
	if (len == 0 || gsasl_base64_from(line, len, &dec, &declen) != GSASL_OK)
		return -EINVAL;
	if (declen > rawmax) {
		gsasl_free(dec);
		return -EMSGSIZE;
	}
	memcpy(raw, dec, declen);
	*rawlen = declen;
	gsasl_free(dec);
	return 0;
}

enum tsp_sasl_result
tsp_sasl_step(struct tsp_sasl *s, const char *in, size_t inlen, char **out, const char **why)
{
	char *raw = NULL;
	size_t rawlen = 0;
	enum tsp_sasl_result r;
	int rc;

	*out = NULL;
	*why = NULL;
	if (in != NULL && inlen > 0) {
		rc = gsasl_base64_from(in, inlen, &raw, &rawlen);
		if (rc != GSASL_OK) {
			*why = "token is not base64";
			return TSP_SASL_FAIL;
		}
	}
	r = tsp_sasl_step_raw(s, raw, rawlen, out, why);
	gsasl_free(raw);
	return r;
}

enum tsp_sasl_result
tsp_sasl_step_raw(struct tsp_sasl *s, const char *raw, size_t rawlen, char **out, const char **why)
{
	char *rout = NULL, *b64 = NULL;
	size_t routlen = 0;
	int rc;

	*out = NULL;
	*why = NULL;
	/*
	 * GNU SASL 2.2's DIGEST-MD5 dereferences a NULL token past its first
	 * step (server: the client's digest-response; client: the server's
	 * challenge and rspauth): an empty line there would crash the daemon.
	 * RFC 2831 never sends an empty token at those steps; refuse it.
	 */
	if (s->digest && (raw == NULL || rawlen == 0) && (s->ss ? s->steps == 1 : s->steps >= 1)) {
		*why = "empty DIGEST-MD5 token";
		return TSP_SASL_FAIL;
	}
	s->steps++;
	rc = gsasl_step(s->s, raw, rawlen, &rout, &routlen);
	if (rc != GSASL_OK && rc != GSASL_NEEDS_MORE) {
		*why = gsasl_strerror_name(rc);
		gsasl_free(rout);
		return TSP_SASL_FAIL;
	}
	/* The server's challenge, in the form deployed clients can read. */
	if (s->ss && s->digest && rc == GSASL_NEEDS_MORE && routlen > 0)
		routlen = tsp_digest_tidy(rout, routlen, rout);
	if (routlen > 0) {
		if (gsasl_base64_to(rout, routlen, &b64, NULL) != GSASL_OK) {
			gsasl_free(rout);
			*why = "out of memory";
			return TSP_SASL_FAIL;
		}
	} else {
		b64 = strdup("");
	}
	gsasl_free(rout);
	if (b64 == NULL) {
		*why = "out of memory";
		return TSP_SASL_FAIL;
	}
	*out = b64;
	if (rc == GSASL_NEEDS_MORE)
		return TSP_SASL_CONTINUE;
	if (s->scram)
		remember_scram(s);
	return TSP_SASL_DONE;
}

const char *
tsp_sasl_user(const struct tsp_sasl *s)
{
	return s && s->s ? gsasl_property_fast(s->s, GSASL_AUTHID) : NULL;
}

void
tsp_sasl_free(struct tsp_sasl *s)
{
	if (s == NULL)
		return;
	if (s->s)
		gsasl_finish(s->s);
	if (s->ss == NULL) {
		if (s->secret)
			OPENSSL_cleanse(s->secret, strlen(s->secret));
		free(s->user);
		free(s->secret);
		free(s->service);
		free(s->hostname);
	}
	free(s);
}
