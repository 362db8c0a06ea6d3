/*
 * DHCPv6 authentication as DSTM asks for it (seed 001 A §7, seed 000:
 * "a DHCPv6 client must use authentication to confirm that it is
 * exchanging the DSTM options with an authorized DHCPv6 server"):
 * delayed authentication (RFC 3315 §21.4; RFC 8415 §20 keeps the option
 * format) with configured keys named by realm and key ID, HMAC-MD5 over
 * the whole message with the MAC field zero, and the reconfigure key
 * (RFC 8415 §20.4) that authenticates a server's Reconfigure.
 *
 *   option 11:  protocol(1) algorithm(1) RDM(1) replay detection(8)
 *   delayed:    realm(n) key ID(4) HMAC-MD5(16)
 *   reconfigure key: type(1: key, 2: HMAC-MD5) value(16)
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "dhcp6/d6.h"

static void
put_head(struct wcur *w, uint16_t len, uint8_t proto, uint64_t replay)
{
	w_u16(w, D6_OPT_AUTH);
	w_u16(w, len);
	w_u8(w, proto);
	w_u8(w, D6_AUTH_ALG_HMAC_MD5);
	w_u8(w, D6_AUTH_RDM_COUNTER);
	w_u32(w, (uint32_t)(replay >> 32));
	w_u32(w, (uint32_t)replay);
}

void
d6_auth_put_delayed(struct wcur *w, const struct d6_key *k, uint64_t replay, uint8_t **mac_at)
{
	size_t rlen = strlen(k->realm);

	*mac_at = NULL;
	if (rlen > D6_REALM_MAX) {
		w->err = true;
		return;
	}
	put_head(w, (uint16_t)(11 + rlen + 4 + 16), D6_AUTH_PROTO_DELAYED, replay);
	w_bytes(w, k->realm, rlen);
	w_u32(w, k->key_id);
	*mac_at = w_reserve(w, 16);
	if (*mac_at)
		memset(*mac_at, 0, 16);
}

void
d6_auth_put_reconf(struct wcur *w, uint8_t type, const uint8_t key[16], uint64_t replay,
                   uint8_t **val_at)
{
	put_head(w, 11 + 17, D6_AUTH_PROTO_RECONF, replay);
	w_u8(w, type);
	*val_at = w_reserve(w, 16);
	if (*val_at)
		memcpy(*val_at, type == 1 ? key : (const uint8_t[16]){0}, 16);
}

int
d6_auth_sign(const uint8_t *msg, size_t len, const uint8_t *secret, size_t secret_len,
             uint8_t *mac_at)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!HMAC(EVP_md5(), secret, (int)secret_len, msg, len, md, &mdlen) || mdlen != 16)
		return -EINVAL;
	memcpy(mac_at, md, 16);
	return 0;
}

bool
d6_auth_verify(const struct d6_msg *m, const uint8_t *secret, size_t secret_len)
{
	uint8_t copy[D6_MAX_MSG], mac[16];

	if (!m->has_auth || m->auth.mac_off == 0 || m->len > sizeof(copy) ||
	    m->auth.mac_off + 16 > m->len)
		return false;
	/* RFC 3315 §21.4.1: the MAC covers the message with the MAC field zero. */
	memcpy(copy, m->raw, m->len);
	memset(copy + m->auth.mac_off, 0, 16);
	if (d6_auth_sign(copy, m->len, secret, secret_len, mac) != 0)
		return false;
	return CRYPTO_memcmp(mac, m->raw + m->auth.mac_off, 16) == 0;
}

const struct d6_key *
d6_key_find(const struct d6_key *keys, size_t n, const char *realm, size_t realm_len,
            uint32_t key_id)
{
	for (size_t i = 0; i < n; i++)
		if (keys[i].key_id == key_id && strlen(keys[i].realm) == realm_len &&
		    memcmp(keys[i].realm, realm, realm_len) == 0)
			return &keys[i];
	return NULL;
}
