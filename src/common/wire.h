/*
 * The bounded cursor every wire format is read and written with
 * (STYLE.md: "one bounded cursor for every format"). A getter that runs
 * past the end returns zero, sets `err` and keeps failing, so a parser
 * reads its fields in order and checks `err` once at the end. Fields
 * are big-endian; no struct is ever overlaid on packet bytes.
 */
#ifndef DSTM_WIRE_H
#define DSTM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cur {
	const uint8_t *p;
	size_t left;
	bool err;
};

static inline struct cur
cur_make(const void *p, size_t n)
{
	struct cur c = {.p = p, .left = n, .err = false};
	return c;
}

static inline bool
cur_need(struct cur *c, size_t n)
{
	if (c->err || c->left < n) {
		c->err = true;
		c->left = 0;
		return false;
	}
	return true;
}

static inline uint8_t
cur_u8(struct cur *c)
{
	if (!cur_need(c, 1))
		return 0;
	c->left--;
	return *c->p++;
}

static inline uint16_t
cur_u16(struct cur *c)
{
	uint16_t v;

	if (!cur_need(c, 2))
		return 0;
	v = (uint16_t)(c->p[0] << 8 | c->p[1]);
	c->p += 2;
	c->left -= 2;
	return v;
}

static inline uint32_t
cur_u32(struct cur *c)
{
	uint32_t v;

	if (!cur_need(c, 4))
		return 0;
	v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 | c->p[3];
	c->p += 4;
	c->left -= 4;
	return v;
}

/* Pointer to the next n bytes (NULL on overrun), consumed. */
static inline const uint8_t *
cur_bytes(struct cur *c, size_t n)
{
	const uint8_t *p;

	if (!cur_need(c, n))
		return NULL;
	p = c->p;
	c->p += n;
	c->left -= n;
	return p;
}

static inline void
cur_copy(struct cur *c, void *dst, size_t n)
{
	const uint8_t *p = cur_bytes(c, n);

	if (p)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}

/* Split off the next n bytes as a cursor of their own. */
static inline struct cur
cur_sub(struct cur *c, size_t n)
{
	const uint8_t *p = cur_bytes(c, n);
	struct cur s = {.p = p, .left = p ? n : 0, .err = p == NULL};
	return s;
}

/* The writer: same discipline, into a caller's buffer. */
struct wcur {
	uint8_t *start;
	uint8_t *p;
	size_t left;
	bool err;
};

static inline struct wcur
wcur_make(void *p, size_t n)
{
	struct wcur w = {.start = p, .p = p, .left = n, .err = false};
	return w;
}

static inline uint8_t *
w_reserve(struct wcur *w, size_t n)
{
	uint8_t *p;

	if (w->err || w->left < n) {
		w->err = true;
		w->left = 0;
		return NULL;
	}
	p = w->p;
	w->p += n;
	w->left -= n;
	return p;
}

static inline void
w_u8(struct wcur *w, uint8_t v)
{
	uint8_t *p = w_reserve(w, 1);

	if (p)
		p[0] = v;
}

static inline void
w_u16(struct wcur *w, uint16_t v)
{
	uint8_t *p = w_reserve(w, 2);

	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

static inline void
w_u32(struct wcur *w, uint32_t v)
{
	uint8_t *p = w_reserve(w, 4);

	if (p) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

static inline void
w_bytes(struct wcur *w, const void *src, size_t n)
{
	uint8_t *p = w_reserve(w, n);

	if (p && n)
		memcpy(p, src, n);
}

static inline size_t
w_len(const struct wcur *w)
{
	return (size_t)(w->p - w->start);
}

/* Store a big-endian 16-bit value at an earlier position (a length field). */
static inline void
w_put16_at(uint8_t *at, uint16_t v)
{
	at[0] = (uint8_t)(v >> 8);
	at[1] = (uint8_t)v;
}

#endif
