/*
 * Unit tests of the control socket (src/common/ctl.c): a server runs its
 * event loop in a second thread while the test talks to it through
 * ctl_request() and through raw sockets, to check the envelope, the
 * error replies to malformed input, the request size bound, several
 * clients at once and the handling of the socket file.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/ctl.h"

struct fixture {
	char dir[64];
	char path[128];
	struct event_base *base;
	struct ctl_server *srv;
	pthread_t thread;
	int calls;
};

/* The daemon side: a few commands that exercise every way of answering. */
static json_t *
handler(void *arg, const char *command, json_t *args, char *err, size_t errlen)
{
	struct fixture *f = arg;

	f->calls++;
	if (strcmp(command, "status") == 0)
		return json_pack("{s:s, s:i}", "state", "running", "calls", f->calls);
	if (strcmp(command, "echo") == 0 || strcmp(command, "binding-add") == 0)
		return json_incref(args);
	if (strcmp(command, "teps") == 0)
		return json_pack("[{s:s, s:s, s:i}, {s:s, s:s, s:n}]", "address", "192.0.2.10",
		                 "client", "fd00:d57::11", "expires", 600, "address", "192.0.2.11",
		                 "client", "fd00:d57::12", "expires");
	if (strcmp(command, "nested") == 0 || strcmp(command, "pools") == 0)
		return json_pack("{s:s, s:{s:s, s:{s:i}}, s:[i,i]}", "state", "bound", "lease",
		                 "ipv4", "192.0.2.10", "tep", "port", 3653, "list", 1, 2);
	if (strcmp(command, "list") == 0)
		return json_pack("[{s:s},{s:s}]", "address", "192.0.2.10", "address", "192.0.2.11");
	if (strcmp(command, "sleep") == 0) {
		usleep(300 * 1000);
		return json_true();
	}
	if (strcmp(command, "stop") == 0) {
		/* Leave the loop a moment later, once this reply has been written. */
		struct timeval soon = {0, 50 * 1000};
		event_base_loopexit(f->base, &soon);
		return json_true();
	}
	if (strcmp(command, "silent-fail") == 0)
		return NULL;
	snprintf(err, errlen, "unknown command \"%s\"", command);
	return NULL;
}

static void *
loop_thread(void *arg)
{
	struct fixture *f = arg;

	event_base_dispatch(f->base);
	return NULL;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_ctl.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/control.sock", f->dir);
	f->base = event_base_new();
	f->srv = ctl_server_new(f->base, f->path, handler, f);
	if (f->srv == NULL)
		return -1;
	pthread_create(&f->thread, NULL, loop_thread, f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char err[256];
	json_t *r;

	r = ctl_call(f->path, "stop", NULL, 2000, err, sizeof(err));
	json_decref(r);
	pthread_join(f->thread, NULL);
	ctl_server_free(f->srv);
	event_base_free(f->base);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int
raw_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {2, 0};
	int fd;

	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Read one reply line from a raw connection and parse it. */
static json_t *
raw_reply(int fd)
{
	char buf[4096];
	size_t len = 0;
	ssize_t r;

	while (len < sizeof(buf) - 1) {
		r = recv(fd, buf + len, 1, 0);
		if (r <= 0)
			return NULL;
		if (buf[len] == '\n')
			return json_loadb(buf, len, 0, NULL);
		len++;
	}
	return NULL;
}

static void
assert_error_reply(json_t *rep, const char *needle)
{
	assert_non_null(rep);
	assert_int_equal(json_integer_value(json_object_get(rep, "version")), 1);
	assert_true(json_is_false(json_object_get(rep, "ok")));
	assert_non_null(strstr(json_string_value(json_object_get(rep, "error")), needle));
}

static void
test_status(void **state)
{
	struct fixture *f = *state;
	char err[256];
	json_t *r;
	int rc;

	rc = ctl_request(f->path, "status", NULL, 2000, &r, err, sizeof(err));
	assert_int_equal(rc, CTL_OK);
	assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
	json_decref(r);
}

static void
test_args_reach_handler(void **state)
{
	struct fixture *f = *state;
	char err[256];
	json_t *args, *r;

	args = json_pack("{s:s, s:i}", "address", "192.0.2.10", "lifetime", 600);
	r = ctl_call(f->path, "echo", args, 2000, err, sizeof(err));
	assert_non_null(r);
	assert_true(json_equal(r, args));
	json_decref(r);
	json_decref(args);

	r = ctl_call(f->path, "list", NULL, 2000, err, sizeof(err));
	assert_true(json_is_array(r));
	assert_int_equal(json_array_size(r), 2);
	json_decref(r);
}

static void
test_error_reply(void **state)
{
	struct fixture *f = *state;
	char err[256];
	json_t *r = NULL;

	assert_int_equal(ctl_request(f->path, "frobnicate", NULL, 2000, &r, err, sizeof(err)),
	                 CTL_EREPLY);
	assert_null(r);
	assert_string_equal(err, "unknown command \"frobnicate\"");
	assert_int_equal(ctl_request(f->path, "silent-fail", NULL, 2000, &r, err, sizeof(err)),
	                 CTL_EREPLY);
	assert_string_equal(err, "command failed");
	assert_null(ctl_call(f->path, "frobnicate", NULL, 2000, err, sizeof(err)));
}

static void
test_malformed_requests(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *line, *needle;
	} cases[] = {
	    {"this is not json\n", "bad JSON"},
	    {"[1,2]\n", "JSON object"},
	    {"{\"command\":\"status\"}\n", "version"},
	    {"{\"version\":2,\"command\":\"status\"}\n", "version"},
	    {"{\"version\":\"1\",\"command\":\"status\"}\n", "version"},
	    {"{\"version\":1}\n", "command"},
	    {"{\"version\":1,\"command\":\"\"}\n", "command"},
	    {"{\"version\":1,\"command\":\"echo\",\"args\":[1]}\n", "args"},
	    {"{\"version\":1,\"command\":\"a\",\"command\":\"b\"}\n", "bad JSON"},
	};
	json_t *rep;
	size_t i;
	int fd;

	/* Every malformed line is answered on the same connection, which then still works. */
	fd = raw_connect(f->path);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(send(fd, cases[i].line, strlen(cases[i].line), 0),
		                 (ssize_t)strlen(cases[i].line));
		rep = raw_reply(fd);
		assert_error_reply(rep, cases[i].needle);
		json_decref(rep);
	}
	const char *ok = "\n{\"version\":1,\"command\":\"status\"}\n";
	assert_int_equal(send(fd, ok, strlen(ok), 0), (ssize_t)strlen(ok));
	rep = raw_reply(fd);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	json_decref(rep);
	close(fd);
}

static void
test_pipelined(void **state)
{
	struct fixture *f = *state;
	const char *two = "{\"version\":1,\"command\":\"echo\",\"args\":{\"n\":1}}\n"
	                  "{\"version\":1,\"command\":\"echo\",\"args\":{\"n\":2}}\n";
	json_t *rep;
	int fd, i;

	fd = raw_connect(f->path);
	assert_int_equal(send(fd, two, strlen(two), 0), (ssize_t)strlen(two));
	shutdown(fd, SHUT_WR); /* replies still come after our EOF */
	for (i = 1; i <= 2; i++) {
		rep = raw_reply(fd);
		assert_non_null(rep);
		assert_int_equal(
		    json_integer_value(json_object_get(json_object_get(rep, "result"), "n")), i);
		json_decref(rep);
	}
	assert_null(raw_reply(fd)); /* then the server closes */
	close(fd);
}

static void
test_request_too_long(void **state)
{
	struct fixture *f = *state;
	size_t n = CTL_MAX_REQUEST + 4096;
	char *big = malloc(n);
	json_t *rep;
	ssize_t w;
	size_t sent = 0;
	int fd;

	memset(big, ' ', n);
	fd = raw_connect(f->path);
	while (sent < n) {
		w = send(fd, big + sent, n - sent, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the server may close before it has read everything */
		sent += (size_t)w;
	}
	rep = raw_reply(fd);
	assert_error_reply(rep, "too long");
	json_decref(rep);
	assert_null(raw_reply(fd));
	close(fd);
	free(big);

	/* The server is still there for others. */
	char err[256];
	json_t *r = ctl_call(f->path, "status", NULL, 2000, err, sizeof(err));
	assert_non_null(r);
	json_decref(r);
}

static void
test_many_clients(void **state)
{
	struct fixture *f = *state;
	const char *req = "{\"version\":1,\"command\":\"status\"}\n";
	int fds[20];
	json_t *rep;
	int i;

	/* All connected at once, all waiting: each is answered independently. */
	for (i = 0; i < 20; i++)
		fds[i] = raw_connect(f->path);
	for (i = 19; i >= 0; i--)
		assert_int_equal(send(fds[i], req, strlen(req), 0), (ssize_t)strlen(req));
	for (i = 0; i < 20; i++) {
		rep = raw_reply(fds[i]);
		assert_true(json_is_true(json_object_get(rep, "ok")));
		json_decref(rep);
		close(fds[i]);
	}
}

static void
test_timeout(void **state)
{
	struct fixture *f = *state;
	char err[256];
	json_t *r;

	assert_int_equal(ctl_request(f->path, "sleep", NULL, 50, &r, err, sizeof(err)), -ETIMEDOUT);
	assert_non_null(strstr(err, "no reply in time"));
	usleep(400 * 1000);
}

static void
test_socket_mode(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
}

static void
test_live_socket_not_stolen(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();

	errno = 0;
	assert_null(ctl_server_new(base, f->path, handler, f));
	assert_int_equal(errno, EADDRINUSE);
	event_base_free(base);
}

static void
test_no_server(void **state)
{
	char err[256];
	json_t *r;

	assert_int_equal(
	    ctl_request("/nonexistent/dir/x.sock", "status", NULL, 500, &r, err, sizeof(err)),
	    -ENOENT);
	assert_non_null(strstr(err, "cannot connect"));
}

static void
test_stale_socket_removed(void **state)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/test_ctl.XXXXXX", path[128];
	struct event_base *base;
	struct ctl_server *srv;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	/* A socket file left behind by a crashed daemon: bound, nobody listening. */
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	base = event_base_new();
	srv = ctl_server_new(base, path, handler, NULL);
	assert_non_null(srv);
	ctl_server_free(srv);
	assert_int_equal(access(path, F_OK), -1); /* free removes the file */

	/* A regular file is never removed. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	errno = 0;
	assert_null(ctl_server_new(base, path, handler, NULL));
	assert_int_equal(errno, EEXIST);
	unlink(path);

	/* A path that does not fit sun_path. */
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	longpath[0] = '/';
	assert_null(ctl_server_new(base, longpath, handler, NULL));
	assert_int_equal(errno, ENAMETOOLONG);
	event_base_free(base);
	rmdir(dir);
}

/* ---- dstmctl, run as a program against the fixture's server */

static const char *dstmctl_path;

/* Run dstmctl with `args` (shell words); its stdout in out, its exit status returned. */
static int
run_dstmctl(const char *env, const char *args, char *out, size_t outlen)
{
	char cmd[1024];
	size_t n;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s '%s' %s 2>/dev/null", env ? env : "", dstmctl_path, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_dstmctl_output(void **state)
{
	struct fixture *f = *state;
	char args[512], out[4096];
	json_t *j;

	/* An array of objects: a table, columns in the order of the first object's keys. */
	snprintf(args, sizeof(args), "-s '%s' teps", f->path);
	assert_int_equal(run_dstmctl(NULL, args, out, sizeof(out)), 0);
	assert_string_equal(out, "address     client        expires\n"
	                         "192.0.2.10  fd00:d57::11  600\n"
	                         "192.0.2.11  fd00:d57::12  -\n");

	/* An object: aligned "key  value" lines, nested objects flattened with dots. */
	snprintf(args, sizeof(args), "-s '%s' pools", f->path);
	assert_int_equal(run_dstmctl(NULL, args, out, sizeof(out)), 0);
	assert_string_equal(out, "state           bound\n"
	                         "lease.ipv4      192.0.2.10\n"
	                         "lease.tep.port  3653\n"
	                         "list            [1,2]\n");

	/* --json: the result itself, unchanged. */
	snprintf(args, sizeof(args), "-s '%s' --json pools", f->path);
	assert_int_equal(run_dstmctl(NULL, args, out, sizeof(out)), 0);
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(json_object_get(j, "lease"), "tep"), "port")),
	                 3653);
	json_decref(j);
}

static void
test_dstmctl_arguments(void **state)
{
	struct fixture *f = *state;
	char args[512], out[4096], env[256];
	json_t *j, *want;

	/* Positional shorthand: revoke ADDRESS; the fixture has no revoke: an error reply, 1. */
	snprintf(args, sizeof(args), "-s '%s' revoke 192.0.2.10", f->path);
	assert_int_equal(run_dstmctl(NULL, args, out, sizeof(out)), 1);

	/* Position, KEY=VALUE (a port becomes a number), --KEY VALUE and KEY:=JSON,
	 * the socket found through $DSTMCTL_SOCKET. */
	snprintf(env, sizeof(env), "DSTMCTL_SOCKET='%s'", f->path);
	assert_int_equal(run_dstmctl(env,
	                             "--json binding-add 192.0.2.10 --ipv6 fd00:d57::11 "
	                             "port_lo=1024 port_hi:=2047",
	                             out, sizeof(out)),
	                 0);
	j = json_loads(out, 0, NULL);
	want = json_pack("{s:s, s:s, s:i, s:i}", "ipv4", "192.0.2.10", "ipv6", "fd00:d57::11",
	                 "port_lo", 1024, "port_hi", 2047);
	assert_true(json_equal(j, want));
	json_decref(j);
	json_decref(want);

	/* Usage errors (2), nothing sent: a word where the command takes none, bad
	 * JSON, an unknown key or command, a value of the wrong kind, a missing
	 * or repeated argument. */
	static const char *const bad[] = {
	    "leases 192.0.2.10",
	    "binding-add ipv4:='[1' ipv6=::1",
	    "leases colour=red",
	    "leases all=maybe",
	    "frobnicate",
	    "revoke",
	    "revoke 192.0.2.300",
	    "revoke 192.0.2.1 port=70000",
	    "binding-add 192.0.2.1",
	    "bindings limit=-1",
	    "revoke 192.0.2.1 address=192.0.2.2",
	    "status now",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = run_dstmctl(env, bad[i], out, sizeof(out));

		if (rc != 2)
			fail_msg("dstmctl %s: exit %d, not 2", bad[i], rc);
	}
	assert_int_equal(f->calls, 2); /* the revoke and the binding-add above */
}

static void
test_dstmctl_exit_codes(void **state)
{
	char out[4096];

	assert_int_equal(run_dstmctl(NULL, "-s /nonexistent/x.sock status", out, sizeof(out)), 2);
	assert_int_equal(run_dstmctl(NULL, "", out, sizeof(out)), 2);
	assert_int_equal(run_dstmctl(NULL, "-t 0 status", out, sizeof(out)), 2);
	assert_int_equal(run_dstmctl(NULL, "--help", out, sizeof(out)), 0);
	/* --help names the commands of every daemon. */
	assert_non_null(strstr(out, "leases"));
	assert_non_null(strstr(out, "bindings"));
	assert_non_null(strstr(out, "revoke"));
	assert_non_null(strstr(out, "counters"));
	assert_non_null(strstr(out, "teps"));
	assert_int_equal(run_dstmctl(NULL, "--version", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "dstmctl "));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_args_reach_handler, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_error_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_clients, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_live_socket_not_stolen, setup, teardown),
	    cmocka_unit_test(test_no_server),
	    cmocka_unit_test(test_stale_socket_removed),
	};
	const struct CMUnitTest dstmctl_tests[] = {
	    cmocka_unit_test_setup_teardown(test_dstmctl_output, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dstmctl_arguments, setup, teardown),
	    cmocka_unit_test(test_dstmctl_exit_codes),
	};

	/* Given the path of dstmctl, test the program instead of the library. */
	if (argc > 1) {
		dstmctl_path = argv[1];
		return cmocka_run_group_tests(dstmctl_tests, NULL, NULL);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
