/*
 * Dropping root and confining a daemon (privdrop.h). priv_drop() changes
 * identity with PR_SET_KEEPCAPS so that the permitted set survives the
 * setuid(), then sets the capability sets to exactly what the caller
 * keeps, through libcap, and checks the outcome instead of trusting it.
 * priv_seccomp() builds a libseccomp allow-list from system call names
 * (resolved for the running architecture; a name the architecture lacks
 * is skipped) with argument filters on socket(), ioctl() and prctl().
 */
#include "common/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"

/* Look `user` up; 0, -ENOENT or -errno. */
static int
priv_lookup(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int rc;

	rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (rc != 0) {
		log_warnx("privdrop: cannot look up user \"%s\": %s", user, strerror(rc));
		return -rc;
	}
	if (res == NULL) {
		log_warnx("privdrop: user \"%s\" does not exist; create it "
		          "(systemd-sysusers etc/systemd/dstm.sysusers, or "
		          "useradd --system --no-create-home --shell /usr/sbin/nologin %s)",
		          user, user);
		return -ENOENT;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

/* Remove every capability outside `keep` from the bounding set. */
static int
priv_bound(uint64_t keep)
{
	cap_value_t c;

	for (c = 0; c <= CAP_LAST_CAP; c++) {
		if (keep & PRIV_CAP(c))
			continue;
		if (!CAP_IS_SUPPORTED(c))
			continue;
		if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0) {
			int e = errno;

			log_warn("privdrop: PR_CAPBSET_DROP %d", (int)c);
			return -e;
		}
	}
	return 0;
}

static uint64_t priv_capmask(cap_t caps, cap_flag_t flag);

/* Are the sets exactly what priv_capset(keep) makes them? */
static bool
priv_caps_are(uint64_t keep)
{
	cap_t cur = cap_get_proc();
	cap_value_t c;
	bool same;

	if (cur == NULL)
		return false;
	same = priv_capmask(cur, CAP_PERMITTED) == keep &&
	       priv_capmask(cur, CAP_EFFECTIVE) == keep && priv_capmask(cur, CAP_INHERITABLE) == 0;
	cap_free(cur);
	for (c = 0; same && CAP_AMBIENT_SUPPORTED() && c <= CAP_LAST_CAP; c++)
		if (cap_get_ambient(c) == 1)
			same = false;
	return same;
}

/*
 * Permitted = effective = `keep`; inheritable and ambient empty. Nothing is
 * called when they are already so (dstmd started by systemd without any
 * capability, under a filter that refuses capset()).
 */
static int
priv_capset(uint64_t keep)
{
	cap_t caps;
	cap_value_t c;
	int rc = 0;

	if (priv_caps_are(keep))
		return 0;
	caps = cap_init(); /* all clear */
	if (caps == NULL)
		return -errno;
	for (c = 0; c <= CAP_LAST_CAP; c++) {
		if (!(keep & PRIV_CAP(c)))
			continue;
		if (cap_set_flag(caps, CAP_PERMITTED, 1, &c, CAP_SET) < 0 ||
		    cap_set_flag(caps, CAP_EFFECTIVE, 1, &c, CAP_SET) < 0) {
			rc = -errno;
			goto out;
		}
	}
	if (cap_set_proc(caps) < 0) {
		rc = -errno;
		log_warn("privdrop: cap_set_proc");
		goto out;
	}
	/* Ambient capabilities only matter across execve(), which we never do. */
	if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() < 0) {
		rc = -errno;
		log_warn("privdrop: cap_reset_ambient");
	}
out:
	cap_free(caps);
	return rc;
}

/* The capability set `flag` of this thread as a mask. */
static uint64_t
priv_capmask(cap_t caps, cap_flag_t flag)
{
	uint64_t m = 0;
	cap_value_t c;
	cap_flag_value_t v;

	for (c = 0; c <= CAP_LAST_CAP; c++)
		if (cap_get_flag(caps, c, flag, &v) == 0 && v == CAP_SET)
			m |= PRIV_CAP(c);
	return m;
}

/* Check, do not trust: ids, the way back to root, the capability sets. */
static int
priv_verify(const char *user, uid_t uid, gid_t gid, uint64_t keep)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	cap_t caps;
	uint64_t perm, eff, inh;

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (r != uid || e != uid || s != uid || rg != gid || eg != gid || sg != gid) {
		log_warnx("privdrop: still uid %u/%u/%u gid %u/%u/%u, not user \"%s\" (%u:%u)",
		          (unsigned)r, (unsigned)e, (unsigned)s, (unsigned)rg, (unsigned)eg,
		          (unsigned)sg, user, (unsigned)uid, (unsigned)gid);
		return -EPERM;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		log_warnx("privdrop: user \"%s\" could become root again", user);
		return -EPERM;
	}
	caps = cap_get_proc();
	if (caps == NULL)
		return -errno;
	perm = priv_capmask(caps, CAP_PERMITTED);
	eff = priv_capmask(caps, CAP_EFFECTIVE);
	inh = priv_capmask(caps, CAP_INHERITABLE);
	cap_free(caps);
	if (perm != keep || eff != keep || inh != 0) {
		log_warnx("privdrop: capabilities permitted %#llx effective %#llx inheritable "
		          "%#llx, wanted %#llx",
		          (unsigned long long)perm, (unsigned long long)eff,
		          (unsigned long long)inh, (unsigned long long)keep);
		return -EPERM;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		log_warnx("privdrop: no_new_privs is not set");
		return -EPERM;
	}
	return 0;
}

int
priv_drop(const char *user, const uint64_t keep_caps)
{
	uid_t uid;
	gid_t gid;
	uint64_t keep = keep_caps;
	bool change;
	int rc;

	if (keep & ~((PRIV_CAP(CAP_LAST_CAP) << 1) - 1)) {
		log_warnx("privdrop: capability mask %#llx names unknown capabilities",
		          (unsigned long long)keep);
		return -EINVAL;
	}
	rc = priv_lookup(user, &uid, &gid);
	if (rc < 0)
		return rc;
	/* Started as the user already (systemd User=): only the capabilities change. */
	change = getuid() != uid || geteuid() != uid || getgid() != gid;
	if (change && geteuid() != 0) {
		log_warnx("privdrop: running as uid %u, cannot become user \"%s\"",
		          (unsigned)geteuid(), user);
		return -EPERM;
	}

	/* The bounding set needs CAP_SETPCAP, which root has and the user will not. */
	if (cap_get_bound(CAP_SETPCAP) == 1 && CAP_IS_SUPPORTED(CAP_SETPCAP)) {
		cap_t self = cap_get_proc();
		cap_flag_value_t v = CAP_CLEAR;

		if (self != NULL) {
			cap_get_flag(self, CAP_SETPCAP, CAP_EFFECTIVE, &v);
			cap_free(self);
		}
		if (v == CAP_SET && (rc = priv_bound(keep)) < 0)
			return rc;
	}

	if (change) {
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
			rc = -errno;
			log_warn("privdrop: PR_SET_KEEPCAPS");
			return rc;
		}
		if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0) {
			rc = -errno;
			log_warn("privdrop: cannot become user \"%s\" (%u:%u)", user, (unsigned)uid,
			         (unsigned)gid);
			return rc;
		}
		if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
			rc = -errno;
			log_warn("privdrop: PR_SET_KEEPCAPS");
			return rc;
		}
	}
	rc = priv_capset(keep);
	if (rc < 0)
		return rc;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		log_warn("privdrop: PR_SET_NO_NEW_PRIVS");
		return rc;
	}
	rc = priv_verify(user, uid, gid, keep);
	if (rc < 0)
		return rc;
	log_info("privdrop: running as user \"%s\" (%u:%u), capabilities %#llx", user,
	         (unsigned)uid, (unsigned)gid, (unsigned long long)keep);
	return 0;
}

/* ---- seccomp ---- */

/*
 * What every profile needs: the event loop (libevent: epoll, eventfd,
 * timerfd, pipes), sockets without socket() itself, files for SQLite
 * (WAL and its shared-memory index: pread/pwrite, fcntl locks, mmap,
 * ftruncate, fallocate, fsync, unlink), syslog, OpenSSL (getrandom, its
 * configuration files), glibc's allocator (brk, mmap, madvise, mremap),
 * signals and the sanitizers' own bookkeeping in test builds.
 */
static const char *const priv_common_syscalls[] = {
    /* I/O */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "recvmmsg",
    "sendmmsg",
    /* sockets (socket() itself is filtered by family below) */
    "accept",
    "accept4",
    "connect",
    "bind",
    "listen",
    "shutdown",
    "socketpair",
    "getsockopt",
    "setsockopt",
    "getsockname",
    "getpeername",
    /* descriptors and the event loop */
    "close",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "eventfd2",
    "pipe",
    "pipe2",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    /* files: SQLite, the database directory, OpenSSL's and glibc's files */
    "open",
    "openat",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "lseek",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getcwd",
    "getdents64",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "ftruncate",
    "fallocate",
    "fsync",
    "fdatasync",
    "fchmod",
    "fchown",
    "umask",
    "flock",
    /* memory */
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "brk",
    "madvise",
    /* time, randomness, threads' primitives */
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "getrandom",
    "futex",
    "sched_yield",
    "sched_getaffinity",
    "set_robust_list",
    "rseq",
    /* signals and the end */
    "rt_sigreturn",
    "rt_sigaction",
    "rt_sigprocmask",
    "sigaltstack",
    "restart_syscall",
    "tgkill",
    "exit",
    "exit_group",
    /* who am I */
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "uname",
    "sysinfo",
    "getrlimit",
    "prlimit64",
    "getrusage",
    "capget",
};

static const char *const priv_dataplane_syscalls[] = {
    /* XDP/tc programs are attached before the drop; maps are read after. */
    "bpf",
};

/* ioctl requests an event-loop daemon makes (stdio's isatty, FIONREAD). */
static const unsigned long priv_ioctl_common[] = {
    TCGETS,       FIONREAD,   FIONBIO,     FIOCLEX,       SIOCGIFINDEX, SIOCGIFNAME,
    SIOCGIFFLAGS, SIOCGIFMTU, SIOCGIFADDR, SIOCGIFHWADDR, SIOCOUTQ,     SIOCINQ,
};

/*
 * The TUN device and the interface it makes (seed 002 §4: the DTI);
 * SIOCETHTOOL for dstm-client's fast path, which turns a veth's transmit
 * checksumming on again at exit (the kernel still wants CAP_NET_ADMIN).
 */
static const unsigned long priv_ioctl_dataplane[] = {
    TUNSETIFF,    TUNGETIFF,  TUNSETPERSIST, TUNSETOFFLOAD,  TUNSETVNETHDRSZ, TUNSETQUEUE,
    SIOCSIFFLAGS, SIOCSIFMTU, SIOCSIFADDR,   SIOCSIFNETMASK, SIOCSIFTXQLEN,   SIOCETHTOOL,
};

static int
priv_allow_names(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	size_t i;
	int nr, rc;

	for (i = 0; i < n; i++) {
		nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a system call on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0 && rc != -EDOM) {
			log_warnx("privdrop: seccomp rule for %s: %s", names[i], strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int
priv_allow_ioctls(scmp_filter_ctx ctx, const unsigned long *reqs, size_t n)
{
	size_t i;
	int rc;

	/* The kernel reads the request as an int: compare the low 32 bits only. */
	for (i = 0; i < n; i++) {
		rc = seccomp_rule_add(
		    ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, reqs[i] & 0xffffffffUL));
		if (rc < 0) {
			log_warnx("privdrop: seccomp rule for ioctl %#lx: %s", reqs[i],
			          strerror(-rc));
			return rc;
		}
	}
	return 0;
}

int
priv_seccomp(enum priv_profile profile)
{
	static const int families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
	static const int prctls[] = {PR_SET_NAME,     PR_GET_NAME,     PR_GET_NO_NEW_PRIVS,
	                             PR_GET_KEEPCAPS, PR_CAPBSET_READ, PR_GET_DUMPABLE};
	const char *mode = getenv("DSTM_SECCOMP");
	bool dataplane = profile == PRIV_PROFILE_TEP || profile == PRIV_PROFILE_CLIENT;
	uint32_t deflt = SCMP_ACT_KILL_PROCESS;
	scmp_filter_ctx ctx;
	size_t i;
	int rc;

	if (profile != PRIV_PROFILE_DSTMD && !dataplane)
		return -EINVAL;
	if (mode != NULL && strcmp(mode, "off") == 0) {
		log_warnx("privdrop: DSTM_SECCOMP=off: no system call filter");
		return 0;
	}
	if (mode != NULL && strcmp(mode, "log") == 0) {
		deflt = SCMP_ACT_LOG;
		log_warnx("privdrop: DSTM_SECCOMP=log: system calls outside the filter are "
		          "only logged by the kernel");
	} else if (mode != NULL && mode[0] != '\0' && strcmp(mode, "kill") != 0) {
		log_warnx("privdrop: DSTM_SECCOMP=\"%s\" is not one of kill, log, off", mode);
		return -EINVAL;
	}

	ctx = seccomp_init(deflt);
	if (ctx == NULL) {
		log_warnx("privdrop: seccomp_init failed");
		return -ENOMEM;
	}
	/* Every thread, and no_new_privs (the kernel requires it without CAP_SYS_ADMIN). */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	if (rc < 0)
		goto out;

	/*
	 * Threads (dstmd's store writer), never processes: clone() only with
	 * CLONE_THREAD; clone3() passes its flags in memory the filter cannot
	 * read, so it fails with ENOSYS and glibc falls back to clone().
	 */
	rc = seccomp_rule_add(
	    ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, (scmp_datum_t)CLONE_THREAD, (scmp_datum_t)CLONE_THREAD));
	if (rc == 0 && seccomp_syscall_resolve_name("clone3") != __NR_SCMP_ERROR)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (rc < 0)
		goto out;

	rc = priv_allow_names(ctx, priv_common_syscalls,
	                      sizeof(priv_common_syscalls) / sizeof(priv_common_syscalls[0]));
	if (rc == 0 && dataplane)
		rc = priv_allow_names(ctx, priv_dataplane_syscalls,
		                      sizeof(priv_dataplane_syscalls) /
		                          sizeof(priv_dataplane_syscalls[0]));
	if (rc < 0)
		goto out;

	/* socket(): our families only; raw sockets only where the data plane needs them. */
	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		if (dataplane)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			                      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i], 0));
		else
			rc = seccomp_rule_add(
			    ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
			    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i], 0),
			    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (scmp_datum_t)SOCK_STREAM));
		if (rc == 0 && !dataplane)
			rc = seccomp_rule_add(
			    ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
			    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i], 0),
			    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (scmp_datum_t)SOCK_DGRAM));
		if (rc == 0 && !dataplane && families[i] == AF_NETLINK)
			rc = seccomp_rule_add(
			    ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
			    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_NETLINK, 0),
			    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (scmp_datum_t)SOCK_RAW));
		if (rc < 0)
			goto out;
	}
	for (i = 0; i < sizeof(prctls) / sizeof(prctls[0]); i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
		                      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctls[i], 0));
		if (rc < 0)
			goto out;
	}
	rc = priv_allow_ioctls(ctx, priv_ioctl_common,
	                       sizeof(priv_ioctl_common) / sizeof(priv_ioctl_common[0]));
	if (rc == 0 && dataplane)
		rc = priv_allow_ioctls(ctx, priv_ioctl_dataplane,
		                       sizeof(priv_ioctl_dataplane) /
		                           sizeof(priv_ioctl_dataplane[0]));
	if (rc < 0)
		goto out;

	rc = seccomp_load(ctx);
	if (rc < 0) {
		log_warnx("privdrop: seccomp_load: %s", strerror(-rc));
		goto out;
	}
	log_info("privdrop: seccomp filter installed (%s profile%s)",
	         profile == PRIV_PROFILE_DSTMD ? "dstmd"
	         : profile == PRIV_PROFILE_TEP ? "tep"
	                                       : "client",
	         deflt == SCMP_ACT_LOG ? ", log only" : "");
out:
	if (rc < 0 && rc != -EINVAL)
		log_warnx("privdrop: seccomp filter not installed: %s", strerror(-rc));
	seccomp_release(ctx);
	return rc;
}
