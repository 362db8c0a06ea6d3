/*
 * On-demand mode of dstm-client (seed 002 §5.1, client.h): the first IPv4
 * packet asks for the address and waits in a short queue until the lease
 * exists; the connections an application opened on the placeholder
 * address before the lease keep working through the early flow table
 * (packet.c). This file decides, for each packet from the application,
 * whether it goes into the tunnel, waits, or is dropped; the tunnel part
 * does the sending. Pure: no I/O, the time is an argument.
 *
 * The queue holds at most `queue` packets (configured); a packet that
 * finds it full is dropped and counted, never grows it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

int
ondemand_init(struct client_ondemand *od, const struct client_config *cfg)
{
	memset(od, 0, sizeof(*od));
	od->enabled = cfg->mode == CLIENT_ON_DEMAND;
	od->placeholder = cfg->placeholder;
	od->cap = cfg->queue;
	if (od->cap) {
		od->q = calloc(od->cap, sizeof(*od->q));
		if (!od->q)
			return -ENOMEM;
	}
	return 0;
}

void
ondemand_free(struct client_ondemand *od)
{
	ondemand_drop_all(od);
	free(od->q);
	od->q = NULL;
}

static void
ondemand_push(struct client_ondemand *od, const uint8_t *p, size_t len)
{
	struct ondemand_pkt *q;

	if (od->len == od->cap) {
		od->n.drop_queue_full++;
		return;
	}
	q = &od->q[(od->head + od->len) % od->cap];
	q->data = malloc(len);
	if (!q->data) {
		od->n.drop_queue_full++;
		return;
	}
	memcpy(q->data, p, len);
	q->len = (uint16_t)len;
	od->len++;
	od->n.queued++;
}

enum ondemand_verdict
ondemand_out(struct client_ondemand *od, const struct client_lease *l, uint8_t *p, size_t len,
             const struct pkt4 *h, int64_t now)
{
	if (l->state == LEASE_BOUND) {
		if (h->src == l->v4)
			return OD_SEND;
		if (od->enabled && h->src == od->placeholder) {
			if (!early_out(&od->early, p, len, od->placeholder, l->v4, now)) {
				od->n.drop_early_table_full++;
				return OD_DROP;
			}
			od->n.early_translated_out++;
			return OD_SEND;
		}
		return OD_BAD_SOURCE;
	}
	if (!od->enabled || h->src != od->placeholder)
		return OD_BAD_SOURCE;
	/* Seed 002 §5.1: the first IPv4 packet asks for the address. */
	ondemand_push(od, p, len);
	return OD_HOLD;
}

void
ondemand_in(struct client_ondemand *od, const struct client_lease *l, uint8_t *p, size_t len,
            int64_t now)
{
	if (od->enabled && early_in(&od->early, p, len, l->v4, od->placeholder, now))
		od->n.early_translated_in++;
}

bool
ondemand_pop(struct client_ondemand *od, struct ondemand_pkt *out)
{
	if (od->len == 0)
		return false;
	*out = od->q[od->head];
	od->q[od->head].data = NULL;
	od->head = (od->head + 1) % od->cap;
	od->len--;
	return true;
}

void
ondemand_drop_all(struct client_ondemand *od)
{
	struct ondemand_pkt q;

	while (ondemand_pop(od, &q)) {
		free(q.data);
		od->n.drop_queue_flushed++;
	}
}
