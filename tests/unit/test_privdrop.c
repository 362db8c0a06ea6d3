/*
 * Unit tests of privdrop.h. Each case runs in a forked child, since both a
 * privilege drop and a seccomp filter are for life; the child reports
 * through its exit status (0, or the number of the check that failed) or
 * dies of SIGSYS. The drop happens in a network namespace of its own, where
 * ports below 1024 are privileged whatever the host's sysctl says. Needs
 * root; skipped otherwise.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/privdrop.h"

/* Fork, run fn in the child, return its wait status. */
static int
run_child(int (*fn)(void))
{
	pid_t pid;
	int status = 0;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn()); /* _exit: no atexit handlers (LeakSanitizer) under the filter */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void
assert_exit_ok(int status)
{
	if (WIFSIGNALED(status))
		fail_msg("child killed by signal %d", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("child failed check %d", WEXITSTATUS(status));
}

static void
assert_killed_sigsys(int status)
{
	if (WIFEXITED(status))
		fail_msg("child survived (exit %d), expected SIGSYS", WEXITSTATUS(status));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

static int
need_root(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	return 0;
}

/* Can we bind TCP port `port` on the wildcard address? 0 or errno. */
static int
try_bind(int port)
{
	struct sockaddr_in sin;
	int fd, rc = 0;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return errno;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		rc = errno;
	close(fd);
	return rc;
}

static int
can_raw(void)
{
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int
child_drop_keep_raw(void)
{
	struct passwd *pw = getpwnam("nobody");
	uid_t r, e, s;

	if (pw == NULL)
		return 1;
	if (unshare(CLONE_NEWNET) < 0)
		return 2;
	if (try_bind(80) != 0) /* root may, before the drop */
		return 3;
	if (priv_drop("nobody", PRIV_CAP(CAP_NET_RAW)) != 0)
		return 4;
	if (getresuid(&r, &e, &s) < 0 || r != pw->pw_uid || e != pw->pw_uid || s != pw->pw_uid)
		return 5;
	if (can_raw() != 0) /* CAP_NET_RAW kept */
		return 6;
	if (try_bind(80) != EACCES) /* CAP_NET_BIND_SERVICE gone */
		return 7;
	if (try_bind(0) != 0) /* an ephemeral port is fine */
		return 8;
	if (setuid(0) == 0 || geteuid() == 0)
		return 9;
	/* The systemd path: already the user, trim further. */
	if (priv_drop("nobody", 0) != 0)
		return 10;
	if (can_raw() != EPERM)
		return 11;
	/* Nothing can come back. */
	if (priv_drop("nobody", PRIV_CAP(CAP_NET_RAW)) == 0)
		return 12;
	return 0;
}

static void
test_drop_keeps_net_raw(void **state)
{
	(void)state;
	assert_exit_ok(run_child(child_drop_keep_raw));
}

static int
child_drop_none(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		return 1;
	if (priv_drop("nobody", 0) != 0)
		return 2;
	if (can_raw() != EPERM)
		return 3;
	if (try_bind(80) != EACCES)
		return 4;
	return 0;
}

static void
test_drop_no_caps(void **state)
{
	(void)state;
	assert_exit_ok(run_child(child_drop_none));
}

static int
child_unknown_user(void)
{
	if (priv_drop("dstm-no-such-user-7", 0) != -ENOENT)
		return 1;
	if (geteuid() != 0) /* nothing changed */
		return 2;
	if (priv_drop("nobody", PRIV_CAP(63)) != -EINVAL)
		return 3;
	return 0;
}

static void
test_unknown_user(void **state)
{
	(void)state;
	assert_exit_ok(run_child(child_unknown_user));
}

/* ---- seccomp ---- */

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg += 1;
}

/*
 * What a daemon does after the filter is in: an event loop with a timer and
 * a socket, a SQLite database in WAL mode, OpenSSL, large and small
 * allocations, a TCP listener on loopback and a connection to it.
 */
/* A store writer thread's life. */
static void *
thread_main(void *arg)
{
	*(int *)arg += 1;
	return NULL;
}

/* Made by the parent: rmdir is not on the list. */
static char workdir[] = "/tmp/dstm-privdrop.XXXXXX";

static int
workload(void)
{
	char path[128], buf[8];
	struct event_base *base;
	struct event *ev;
	struct timeval tv = {0, 1000};
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	sqlite3 *db;
	SSL_CTX *ctx;
	unsigned char rnd[32];
	int fired = 0, sv[2], l, c, a;
	void *big;
	pthread_t th;

	snprintf(path, sizeof(path), "%s/leases.db", workdir);
	if (priv_seccomp(PRIV_PROFILE_DSTMD) != 0)
		return 21;

	base = event_base_new();
	if (base == NULL)
		return 22;
	ev = evtimer_new(base, on_timer, &fired);
	evtimer_add(ev, &tv);
	event_base_dispatch(base);
	event_free(ev);
	event_base_free(base);
	if (fired != 1)
		return 23;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return 24;
	if (write(sv[0], "dstm", 4) != 4 || read(sv[1], buf, sizeof(buf)) != 4)
		return 25;
	close(sv[0]);
	close(sv[1]);

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 4) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &sl) < 0)
		return 26;
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return 27;
	a = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	if (a < 0)
		return 28;
	close(a);
	close(c);
	close(l);

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 29;
	if (sqlite3_exec(db,
	                 "PRAGMA journal_mode=WAL; CREATE TABLE lease(v4 INTEGER UNIQUE);"
	                 "BEGIN; INSERT INTO lease VALUES (3221225994); COMMIT;",
	                 NULL, NULL, NULL) != SQLITE_OK)
		return 30;
	sqlite3_close(db);

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return 31;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return 32;
	SSL_CTX_free(ctx);

	if (pthread_create(&th, NULL, thread_main, &fired) != 0 || pthread_join(th, NULL) != 0 ||
	    fired != 2)
		return 35;

	big = malloc(64 << 20);
	if (big == NULL)
		return 33;
	memset(big, 1, 64 << 20);
	free(big);

	snprintf(path, sizeof(path), "%s/leases.db-wal", workdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/leases.db-shm", workdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/leases.db", workdir);
	if (unlink(path) < 0)
		return 34;
	return 0;
}

static void
test_seccomp_allows_workload(void **state)
{
	int status;

	(void)state;
	assert_non_null(mkdtemp(workdir));
	status = run_child(workload);
	rmdir(workdir);
	assert_exit_ok(status);
}

static int
child_ptrace(void)
{
	if (priv_seccomp(PRIV_PROFILE_DSTMD) != 0)
		return 1;
	syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
	return 0;
}

static int
child_fork(void)
{
	if (priv_seccomp(PRIV_PROFILE_DSTMD) != 0)
		return 1;
	if (fork() == 0)
		_exit(0);
	return 0;
}

static int
child_execve(void)
{
	char *argv[] = {"/bin/true", NULL}, *envp[] = {NULL};

	if (priv_seccomp(PRIV_PROFILE_TEP) != 0)
		return 1;
	execve("/bin/true", argv, envp);
	return 0;
}

static int
child_packet_socket(void)
{
	if (priv_seccomp(PRIV_PROFILE_TEP) != 0)
		return 1;
	/* AF_PACKET = 17: not a family any profile allows. */
	syscall(SYS_socket, 17, SOCK_RAW, 0);
	return 0;
}

static int
child_raw_dstmd(void)
{
	if (priv_seccomp(PRIV_PROFILE_DSTMD) != 0)
		return 1;
	socket(AF_INET6, SOCK_RAW, IPPROTO_IPIP);
	return 0;
}

static int
child_raw_tep(void)
{
	int fd;

	if (priv_seccomp(PRIV_PROFILE_TEP) != 0)
		return 1;
	fd = socket(AF_INET6, SOCK_RAW, IPPROTO_IPIP);
	if (fd < 0)
		return 2;
	close(fd);
	return 0;
}

static void
test_seccomp_kills_forbidden(void **state)
{
	(void)state;
	assert_killed_sigsys(run_child(child_ptrace));
	assert_killed_sigsys(run_child(child_execve));
	assert_killed_sigsys(run_child(child_fork));
	assert_killed_sigsys(run_child(child_packet_socket));
	assert_killed_sigsys(run_child(child_raw_dstmd));
	assert_exit_ok(run_child(child_raw_tep));
}

static int
child_log_mode(void)
{
	setenv("DSTM_SECCOMP", "log", 1);
	if (priv_seccomp(PRIV_PROFILE_DSTMD) != 0)
		return 1;
	syscall(SYS_getpgid, 0); /* outside the list: logged, not fatal */
	return 0;
}

static int
child_bad_mode(void)
{
	setenv("DSTM_SECCOMP", "lenient", 1);
	return priv_seccomp(PRIV_PROFILE_DSTMD) == -EINVAL ? 0 : 1;
}

static void
test_seccomp_modes(void **state)
{
	(void)state;
	assert_exit_ok(run_child(child_log_mode));
	assert_exit_ok(run_child(child_bad_mode));
}

/* Both, the way dstm-tep will use them. */
static int
child_drop_then_filter(void)
{
	int fd;

	if (unshare(CLONE_NEWNET) < 0)
		return 1;
	if (priv_drop("nobody", PRIV_CAP(CAP_NET_ADMIN) | PRIV_CAP(CAP_NET_RAW)) != 0)
		return 2;
	if (priv_seccomp(PRIV_PROFILE_TEP) != 0)
		return 3;
	fd = socket(AF_INET6, SOCK_RAW, IPPROTO_IPIP);
	if (fd < 0)
		return 4;
	close(fd);
	if (try_bind(80) != EACCES)
		return 5;
	return 0;
}

static void
test_drop_then_filter(void **state)
{
	(void)state;
	assert_exit_ok(run_child(child_drop_then_filter));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_unknown_user, need_root),
	    cmocka_unit_test_setup(test_drop_keeps_net_raw, need_root),
	    cmocka_unit_test_setup(test_drop_no_caps, need_root),
	    cmocka_unit_test_setup(test_seccomp_allows_workload, need_root),
	    cmocka_unit_test_setup(test_seccomp_kills_forbidden, need_root),
	    cmocka_unit_test_setup(test_seccomp_modes, need_root),
	    cmocka_unit_test_setup(test_drop_then_filter, need_root),
	};

	log_init(1, 0, "test_privdrop");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
