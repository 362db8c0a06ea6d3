/*
 * The server's DUID (RFC 8415 §11): created once and kept, because
 * clients remember the server they are bound to by it (Renew and Release
 * name it; §11: "the DUID ... SHOULD NOT change over time"). It lives in
 * a small file next to the lease database, as hex on one line, and is
 * written through a temporary file, fsync'd and renamed, so that a crash
 * never leaves half a DUID.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dhcp6/d6.h"

#define DUID_EPOCH      946684800 /* 2000-01-01 00:00 UTC: RFC 8415 §11.2 */
#define DUID_ENTERPRISE 32473     /* RFC 5612: for documentation (DUID-EN) */

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int
load(const char *path, uint8_t *duid, size_t *len)
{
	char text[2 * (D6_DUID_MAX + 2) + 4];
	size_t n = 0, o = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = '\0';
	if (n < 6 || n % 2 || n / 2 > D6_DUID_MAX + 2)
		return -EINVAL;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(text[i]), lo = hexval(text[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		duid[o++] = (uint8_t)(hi << 4 | lo);
	}
	*len = o;
	return 0;
}

static int
store(const char *path, const uint8_t *duid, size_t len)
{
	char tmp[4096], text[2 * (D6_DUID_MAX + 2) + 2];
	int fd, rc = 0;
	size_t o = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	for (size_t i = 0; i < len; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%02x", duid[i]);
	text[o++] = '\n';
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return -errno;
	if (write(fd, text, o) != (ssize_t)o || fsync(fd) != 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int
d6_duid_load_or_create(const char *path, const uint8_t *mac, int64_t now, uint8_t *duid,
                       size_t *len)
{
	struct wcur w = wcur_make(duid, D6_DUID_MAX + 2);
	int rc = load(path, duid, len);

	if (rc != -ENOENT)
		return rc;
	if (mac) {
		/* §11.2 DUID-LLT: type 1, hardware type 1 (Ethernet), time, link-layer address. */
		w_u16(&w, 1);
		w_u16(&w, 1);
		w_u32(&w, (uint32_t)(now - DUID_EPOCH));
		w_bytes(&w, mac, 6);
	} else {
		/* §11.3 DUID-EN: type 2, enterprise number, an identifier of our own. */
		uint8_t id[16];

		if (RAND_bytes(id, sizeof(id)) != 1)
			return -EIO;
		w_u16(&w, 2);
		w_u32(&w, DUID_ENTERPRISE);
		w_bytes(&w, id, sizeof(id));
	}
	*len = w_len(&w);
	return store(path, duid, *len);
}
