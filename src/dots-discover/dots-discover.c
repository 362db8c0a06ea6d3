/*
 * dots-discover: find the DOTS servers of this host (seed 003, RFC 8973)
 * and print them in the order a DOTS client should try them, as a table
 * or as JSON. A thin shell over src/dots: it reads the command line and
 * the optional JSON configuration (explicit servers, default domain,
 * anycast addresses), runs dots_discover() and formats the result.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/args.h"
#include "common/cfg.h"
#include "common/log.h"
#include "dots/dots_io.h"

#define MAX_EXPLICIT 64
#define MAX_ANYCAST  16

static struct dots_explicit ex[MAX_EXPLICIT];
static struct dots_anycast any[MAX_ANYCAST];

static void
usage(FILE *f)
{
	fprintf(f, "usage: dots-discover [-46] [-i IFACE]... [-m METHOD]... [-t TRANSPORT]...\n"
	           "                     [-c CONFIG] [-s SERVER]... [-a ANYCAST]... [-d DOMAIN]\n"
	           "                     [-D ADDR[@PORT]] [-T MS] [--first] [--json] [-v] [-n]\n"
	           "       dots-discover --version\n"
	           "methods: explicit dhcp s-naptr dns-sd mdns anycast\n"
	           "transports: signal.udp signal.tcp data.tcp call-home.udp call-home.tcp\n");
}

/* "NAME", "ADDR,ri=NAME", with optional ",port=N", ",transport=T", ",if=IFACE". */
static int
parse_server(const char *arg, struct dots_explicit *e, char *err, size_t errlen)
{
	char buf[512], *save = NULL, *tok;
	bool first = true;

	memset(e, 0, sizeof(*e));
	e->family = AF_UNSPEC;
	if (strlen(arg) >= sizeof(buf)) {
		snprintf(err, errlen, "too long");
		return -EINVAL;
	}
	strcpy(buf, arg);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (first) {
			first = false;
			if (dots_addr_parse(tok, &e->addr)) {
				e->has_addr = true;
				e->family = e->addr.family;
			} else if (dots_name_valid(tok)) {
				snprintf(e->name, sizeof(e->name), "%s", tok);
			} else {
				snprintf(err, errlen, "\"%s\" is neither an address nor a name",
				         tok);
				return -EINVAL;
			}
		} else if (strncmp(tok, "ri=", 3) == 0 && dots_name_valid(tok + 3)) {
			snprintf(e->ri, sizeof(e->ri), "%s", tok + 3);
		} else if (strncmp(tok, "port=", 5) == 0 && atoi(tok + 5) > 0 &&
		           atoi(tok + 5) < 65536) {
			e->port = (uint16_t)atoi(tok + 5);
		} else if (strncmp(tok, "transport=", 10) == 0) {
			enum dots_transport t;

			if (!dots_transport_parse(tok + 10, &t)) {
				snprintf(err, errlen, "unknown transport \"%s\"", tok + 10);
				return -EINVAL;
			}
			e->transports |= 1 << t;
		} else if (strncmp(tok, "if=", 3) == 0 && strlen(tok + 3) < IF_NAMESIZE) {
			snprintf(e->ifname, sizeof(e->ifname), "%s", tok + 3);
		} else {
			snprintf(err, errlen, "bad field \"%s\"", tok);
			return -EINVAL;
		}
	}
	/* Seed 003 §5: an address needs a reference identifier for authentication. */
	if (e->has_addr && !e->ri[0]) {
		snprintf(err, errlen, "an address needs a reference identifier: add ,ri=NAME");
		return -EINVAL;
	}
	return 0;
}

/* The configuration file: see dots-discover(1), CONFIGURATION. */
static int
load_config(const char *path, struct dots_opts *o)
{
	static const char *const top[] = {"servers",    "domain",     "anycast",
	                                  "dns_server", "timeout_ms", "dhcp4_address_format",
	                                  NULL};
	static const char *const srvkeys[] = {"name",      "address", "ri",        "port",
	                                      "transport", "family",  "interface", NULL};
	static const char *const anykeys[] = {"address", "ri", NULL};
	static const char *const fmts[] = {"rfc8973", "draft", NULL};
	static const char *const fams[] = {"any", "ipv4", "ipv6", NULL};
	char err[512], p[128];
	struct cfg *c = cfg_load(path, err, sizeof(err));
	const char *s;
	long long ll;
	size_t n;
	int fmt, rc = 0;

	if (!c) {
		fprintf(stderr, "dots-discover: %s\n", err);
		return -EINVAL;
	}
	cfg_check_keys(c, "", top);
	if (cfg_str(c, "/domain", false, "", &s) && s[0]) {
		if (!dots_name_valid(s))
			cfg_error(c, "/domain", "\"%s\" is not a domain name", s);
		else
			snprintf(o->dflt_domain, sizeof(o->dflt_domain), "%s", s);
	}
	if (cfg_str(c, "/dns_server", false, "", &s) && s[0] && !o->dns_server[0]) {
		char csv[160];

		if (dots_dns_server_csv(s, csv, sizeof(csv)) < 0)
			cfg_error(c, "/dns_server", "\"%s\" is not ADDR or ADDR@PORT", s);
		else
			snprintf(o->dns_server, sizeof(o->dns_server), "%s", s);
	}
	if (cfg_int(c, "/timeout_ms", false, o->timeout_ms, 100, 60000, &ll))
		o->timeout_ms = (int)ll;
	if (cfg_enum(c, "/dhcp4_address_format", false, 0, fmts, &fmt))
		o->d4fmt = fmt == 0 ? DOTS_D4_RFC8973 : DOTS_D4_DRAFT;
	if (cfg_array(c, "/servers", false, &n)) {
		for (size_t i = 0; i < n; i++) {
			struct dots_explicit *e;
			const char *name = "", *addr = "", *ri = "", *tr = "", *ifn = "";
			int fam;

			if (o->nex == MAX_EXPLICIT) {
				snprintf(p, sizeof(p), "/servers/%zu", i);
				cfg_error(c, p, "more than %d servers", MAX_EXPLICIT);
				break;
			}
			e = &ex[o->nex];
			memset(e, 0, sizeof(*e));
			snprintf(p, sizeof(p), "/servers/%zu", i);
			cfg_check_keys(c, p, srvkeys);
			snprintf(p, sizeof(p), "/servers/%zu/name", i);
			cfg_str(c, p, false, "", &name);
			snprintf(p, sizeof(p), "/servers/%zu/address", i);
			cfg_str(c, p, false, "", &addr);
			snprintf(p, sizeof(p), "/servers/%zu/ri", i);
			cfg_str(c, p, false, "", &ri);
			snprintf(p, sizeof(p), "/servers/%zu/port", i);
			if (cfg_int(c, p, false, 0, 0, 65535, &ll))
				e->port = (uint16_t)ll;
			snprintf(p, sizeof(p), "/servers/%zu/transport", i);
			cfg_str(c, p, false, "", &tr);
			snprintf(p, sizeof(p), "/servers/%zu/interface", i);
			cfg_str(c, p, false, "", &ifn);
			snprintf(p, sizeof(p), "/servers/%zu/family", i);
			cfg_enum(c, p, false, 0, fams, &fam);
			e->family = fam == 1 ? AF_INET : fam == 2 ? AF_INET6 : AF_UNSPEC;
			snprintf(p, sizeof(p), "/servers/%zu", i);
			if (!!name[0] == !!addr[0]) {
				cfg_error(c, p, "give either \"name\" or \"address\"");
				continue;
			}
			if (addr[0]) {
				if (!dots_addr_parse(addr, &e->addr)) {
					cfg_error(c, p, "\"%s\" is not an IP address", addr);
					continue;
				}
				e->has_addr = true;
				e->family = e->addr.family;
				if (!ri[0]) {
					cfg_error(
					    c, p,
					    "address %s needs \"ri\", the name to authenticate "
					    "the server with",
					    addr);
					continue;
				}
			} else if (!dots_name_valid(name)) {
				cfg_error(c, p, "\"%s\" is not a domain name", name);
				continue;
			} else {
				snprintf(e->name, sizeof(e->name), "%s", name);
			}
			if (ri[0] && !dots_name_valid(ri)) {
				cfg_error(c, p, "ri \"%s\" is not a domain name", ri);
				continue;
			}
			snprintf(e->ri, sizeof(e->ri), "%s", ri);
			if (tr[0]) {
				enum dots_transport t;

				if (!dots_transport_parse(tr, &t)) {
					cfg_error(c, p, "unknown transport \"%s\"", tr);
					continue;
				}
				e->transports = 1 << t;
			}
			if (strlen(ifn) >= IF_NAMESIZE) {
				cfg_error(c, p, "interface name \"%s\" too long", ifn);
				continue;
			}
			snprintf(e->ifname, sizeof(e->ifname), "%s", ifn);
			o->nex++;
		}
	}
	if (cfg_array(c, "/anycast", false, &n)) {
		for (size_t i = 0; i < n && o->nany < MAX_ANYCAST; i++) {
			const char *addr = "", *ri = "";

			snprintf(p, sizeof(p), "/anycast/%zu", i);
			cfg_check_keys(c, p, anykeys);
			snprintf(p, sizeof(p), "/anycast/%zu/address", i);
			if (!cfg_str(c, p, true, "", &addr))
				continue;
			if (!dots_addr_parse(addr, &any[o->nany].addr)) {
				cfg_error(c, p, "\"%s\" is not an IP address", addr);
				continue;
			}
			snprintf(p, sizeof(p), "/anycast/%zu/ri", i);
			cfg_str(c, p, false, "", &ri);
			snprintf(any[o->nany].ri, sizeof(any[o->nany].ri), "%s", ri);
			o->nany++;
		}
	}
	if (cfg_nerrors(c)) {
		cfg_print_errors(c, stderr);
		rc = -EINVAL;
	}
	cfg_free(c);
	return rc;
}

static const char *
fam_name(int f)
{
	return f == AF_INET6 ? "ipv6" : f == AF_INET ? "ipv4" : "-";
}

static void
print_table(const struct dots_run *r)
{
	char ab[INET6_ADDRSTRLEN];

	if (r->list.n == 0) {
		printf("no DOTS server found\n");
		return;
	}
	printf("%-5s %-9s %-10s %-4s %-13s %-28s %-5s %-28s %s\n", "ORDER", "METHOD", "INTERFACE",
	       "FAM", "TRANSPORT", "ADDRESS", "PORT", "REFERENCE-ID", "VIA");
	for (size_t i = 0; i < r->list.n; i++) {
		const struct dots_server *s = &r->list.v[i];

		printf("%-5u %-9s %-10s %-4s %-13s %-28s %-5u %-28s %s\n", s->order,
		       dots_method_name(s->method), s->ifname[0] ? s->ifname : "-",
		       s->addr.family == AF_INET6 ? "6" : "4", dots_transport_name(s->transport),
		       dots_addr_fmt(&s->addr, ab), s->port, s->ri, s->via);
	}
}

#define CNT(obj, name, v) json_object_set_new(obj, name, json_integer((json_int_t)(v)))

static void
print_json(const struct dots_run *r)
{
	json_t *root = json_object(), *arr = json_array(), *ev = json_array(), *c = json_object();
	const struct dots_counters *k = &r->c;
	char ab[INET6_ADDRSTRLEN];
	char *out;

	for (size_t i = 0; i < r->list.n; i++) {
		const struct dots_server *s = &r->list.v[i];

		json_array_append_new(
		    arr, json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "order",
		                   (int)s->order, "method", dots_method_name(s->method),
		                   "interface", s->ifname, "family", fam_name(s->addr.family),
		                   "transport", dots_transport_name(s->transport), "address",
		                   dots_addr_fmt(&s->addr, ab), "port", (int)s->port,
		                   "reference_identifier", s->ri, "via", s->via));
	}
	for (size_t i = 0; i < r->nev; i++)
		json_array_append_new(
		    ev, json_pack("{s:s, s:s, s:s, s:s}", "interface", r->ev[i].ifname, "family",
		                  fam_name(r->ev[i].family), "method",
		                  dots_method_name(r->ev[i].method), "text", r->ev[i].text));
	CNT(c, "dhcp_bad_ri", k->dhcp.bad_ri);
	CNT(c, "dhcp_bad_address", k->dhcp.bad_address);
	CNT(c, "dhcp_discarded_address", k->dhcp.discarded_address);
	CNT(c, "dhcp_extra_instance", k->dhcp.extra_instance);
	CNT(c, "dhcp_extra_name", k->dhcp.extra_name);
	CNT(c, "dhcp_bad_domain", k->dhcp.bad_domain);
	CNT(c, "dhcp_truncated_addrs", k->dhcp.truncated_addrs);
	CNT(c, "d6_sent", k->d6_sent);
	CNT(c, "d6_replies", k->d6_replies);
	CNT(c, "d6_bad_reply", k->d6_bad_reply);
	CNT(c, "d6_timeouts", k->d6_timeouts);
	CNT(c, "d4_sent", k->d4_sent);
	CNT(c, "d4_replies", k->d4_replies);
	CNT(c, "d4_bad_reply", k->d4_bad_reply);
	CNT(c, "d4_timeouts", k->d4_timeouts);
	CNT(c, "naptr_other_service", k->naptr.other_service);
	CNT(c, "naptr_bad_record", k->naptr.bad_record);
	CNT(c, "dns_queries", k->dns_queries);
	CNT(c, "dns_timeouts", k->dns_timeouts);
	CNT(c, "dns_nxdomain", k->dns_nxdomain);
	CNT(c, "dns_nodata", k->dns_nodata);
	CNT(c, "dns_servfail", k->dns_servfail);
	CNT(c, "dns_bad_answer", k->dns_bad_answer);
	CNT(c, "dns_retries", k->dns_retries);
	CNT(c, "dns_backoff_skipped", k->dns_backoff_skipped);
	CNT(c, "dns_msg_bad_message", k->dns.bad_message);
	CNT(c, "dns_msg_bad_record", k->dns.bad_record);
	CNT(c, "dns_msg_bad_name", k->dns.bad_name);
	CNT(c, "dns_msg_truncated", k->dns.truncated);
	CNT(c, "mdns_sent", k->mdns_sent);
	CNT(c, "mdns_responses", k->mdns_responses);
	CNT(c, "mdns_bad", k->mdns_bad);
	CNT(c, "dnssd_incomplete", k->dnssd_incomplete);
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "servers", arr);
	json_object_set_new(root, "events", ev);
	json_object_set_new(root, "counters", c);
	out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (out)
		printf("%s\n", out);
	free(out);
	json_decref(root);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"ipv4", no_argument, NULL, '4'},
	    {"ipv6", no_argument, NULL, '6'},
	    {"interface", required_argument, NULL, 'i'},
	    {"method", required_argument, NULL, 'm'},
	    {"transport", required_argument, NULL, 't'},
	    {"config", required_argument, NULL, 'c'},
	    {"server", required_argument, NULL, 's'},
	    {"anycast", required_argument, NULL, 'a'},
	    {"domain", required_argument, NULL, 'd'},
	    {"dns-server", required_argument, NULL, 'D'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"first", no_argument, NULL, 'F'},
	    {"json", no_argument, NULL, 'j'},
	    {"dhcp4-format", required_argument, NULL, 'f'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"check", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct dots_opts o = {.timeout_ms = 3000, .d4fmt = DOTS_D4_RFC8973};
	struct dots_run r;
	const char *config = NULL;
	bool json = false, check = false;
	int ch, verbose = 0, rc;
	char err[256];
	size_t nex_cli = 0, nany_cli = 0;
	struct dots_explicit cli_ex[MAX_EXPLICIT];
	struct dots_anycast cli_any[MAX_ANYCAST];

	log_init(1, 0, "dots-discover");
	while ((ch = getopt_long(argc, argv, "46i:m:t:c:s:a:d:D:T:jvnhV", lo, NULL)) != -1) {
		switch (ch) {
		case '4':
			o.v4 = true;
			break;
		case '6':
			o.v6 = true;
			break;
		case 'i':
			if (o.nif == DOTS_MAX_IFS || strlen(optarg) >= IF_NAMESIZE) {
				fprintf(stderr, "dots-discover: -i %s: too many or too long\n",
				        optarg);
				return 2;
			}
			snprintf(o.ifnames[o.nif++], IF_NAMESIZE, "%s", optarg);
			break;
		case 'm': {
			enum dots_method m;

			if (!dots_method_parse(optarg, &m)) {
				fprintf(stderr, "dots-discover: unknown method \"%s\"\n", optarg);
				usage(stderr);
				return 2;
			}
			o.methods |= 1u << m;
			break;
		}
		case 't': {
			enum dots_transport t;

			if (!dots_transport_parse(optarg, &t)) {
				fprintf(stderr, "dots-discover: unknown transport \"%s\"\n",
				        optarg);
				usage(stderr);
				return 2;
			}
			o.transports |= 1u << t;
			break;
		}
		case 'c':
			config = optarg;
			break;
		case 's':
			if (nex_cli == MAX_EXPLICIT ||
			    parse_server(optarg, &cli_ex[nex_cli], err, sizeof(err)) < 0) {
				fprintf(stderr, "dots-discover: --server %s: %s\n", optarg,
				        nex_cli == MAX_EXPLICIT ? "too many" : err);
				return 2;
			}
			nex_cli++;
			break;
		case 'a': {
			char buf[300], *comma;

			snprintf(buf, sizeof(buf), "%s", optarg);
			comma = strchr(buf, ',');
			if (comma)
				*comma++ = '\0';
			if (nany_cli == MAX_ANYCAST ||
			    !dots_addr_parse(buf, &cli_any[nany_cli].addr) ||
			    (comma && (strncmp(comma, "ri=", 3) || !dots_name_valid(comma + 3)))) {
				fprintf(stderr,
				        "dots-discover: --anycast %s: want ADDR[,ri=NAME]\n",
				        optarg);
				return 2;
			}
			snprintf(cli_any[nany_cli].ri, DOTS_NAME_MAX, "%s", comma ? comma + 3 : "");
			nany_cli++;
			break;
		}
		case 'd':
			if (!dots_name_valid(optarg)) {
				fprintf(stderr, "dots-discover: --domain %s: not a domain name\n",
				        optarg);
				return 2;
			}
			snprintf(o.domain, sizeof(o.domain), "%s", optarg);
			break;
		case 'D': {
			char csv[160];

			if (dots_dns_server_csv(optarg, csv, sizeof(csv)) < 0) {
				fprintf(stderr,
				        "dots-discover: --dns-server %s: want ADDR[@PORT]\n",
				        optarg);
				return 2;
			}
			snprintf(o.dns_server, sizeof(o.dns_server), "%s", optarg);
			break;
		}
		case 'T':
			o.timeout_ms = atoi(optarg);
			if (o.timeout_ms < 100 || o.timeout_ms > 60000) {
				fprintf(stderr, "dots-discover: --timeout: 100 to 60000 ms\n");
				return 2;
			}
			break;
		case 'F':
			o.first_only = true;
			break;
		case 'f':
			if (strcmp(optarg, "rfc8973") == 0)
				o.d4fmt = DOTS_D4_RFC8973;
			else if (strcmp(optarg, "draft") == 0)
				o.d4fmt = DOTS_D4_DRAFT;
			else {
				fprintf(stderr, "dots-discover: --dhcp4-format rfc8973|draft\n");
				return 2;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			print_version(stdout, "dots-discover");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_setverbose(verbose);
	/* Command-line servers come first: they are the most explicit configuration. */
	memcpy(ex, cli_ex, nex_cli * sizeof(ex[0]));
	memcpy(any, cli_any, nany_cli * sizeof(any[0]));
	o.nex = nex_cli;
	o.nany = nany_cli;
	if (config && load_config(config, &o) < 0)
		return 2;
	if (check) {
		printf("%s: %zu explicit server(s), %zu anycast address(es), domain \"%s\"\n",
		       config ? config : "(command line)", o.nex, o.nany, o.dflt_domain);
		return 0;
	}
	o.ex = ex;
	o.any = any;
	if (!o.v4 && !o.v6)
		o.v4 = o.v6 = true;
	if (!o.methods)
		o.methods = (1u << DOTS_NMETHOD) - 1;
	if (!o.transports)
		o.transports =
		    (1u << DOTS_SIGNAL_UDP) | (1u << DOTS_SIGNAL_TCP) | (1u << DOTS_DATA_TCP);
	dots_run_init(&r);
	rc = dots_discover(&o, &r);
	if (rc < 0) {
		fprintf(stderr, "dots-discover: %s\n",
		        rc == -ENODEV ? "no such interface (or it is down)" : strerror(-rc));
		dots_run_free(&r);
		return 2;
	}
	if (json) {
		print_json(&r);
	} else {
		print_table(&r);
		if (verbose)
			for (size_t i = 0; i < r.nev; i++)
				fprintf(stderr, "%s/%s %s: %s\n",
				        r.ev[i].ifname[0] ? r.ev[i].ifname : "-",
				        fam_name(r.ev[i].family), dots_method_name(r.ev[i].method),
				        r.ev[i].text);
	}
	rc = r.list.n ? 0 : 1;
	dots_run_free(&r);
	return rc;
}
