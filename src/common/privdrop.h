/*
 * Least privilege for the daemons (STYLE "Least privilege"): give
 * up root for an unprivileged user while keeping only the capabilities a
 * daemon still needs, then confine the rest of its life to the system
 * calls an event-loop network daemon makes (seccomp-bpf allow-list).
 *
 * How a daemon uses it, in this order, before it reads one byte from the
 * network:
 *
 *	cfg = load_config(…);                      parse our own files as root
 *	open TUN, raw sockets, listeners (<1024),  what needs root
 *	netlink routes, XDP attach, the database
 *	if (priv_drop("dstm", PRIV_CAP(CAP_NET_ADMIN) | PRIV_CAP(CAP_NET_RAW)) < 0)
 *		fatalx("cannot drop privileges");
 *	if (priv_seccomp(PRIV_PROFILE_TEP) < 0)
 *		fatalx("cannot install the seccomp filter");
 *	event_base_dispatch(base);                 network input from here on
 *
 * priv_drop() must run before any thread is created: capabilities belong
 * to a thread, and a thread inherits them from its creator. The filter of
 * priv_seccomp() covers every thread, those that exist and those created
 * later (clone() of a thread is allowed, of a process is not). Under systemd
 * with User=dstm and AmbientCapabilities= the process starts unprivileged;
 * priv_drop() then only trims the capability sets to `keep_caps` and sets
 * no_new_privs, so the same call works with and without the unit files of
 * etc/systemd/.
 */
#ifndef DSTM_PRIVDROP_H
#define DSTM_PRIVDROP_H

#include <linux/capability.h>
#include <stdint.h>

/* The bit of capability `cap` (CAP_NET_ADMIN, …) in a keep_caps mask. */
#define PRIV_CAP(cap) (UINT64_C(1) << (cap))

/*
 * Become `user` (its uid, its primary gid, no supplementary groups) and keep
 * exactly the capabilities of `keep_caps` in the permitted and effective
 * sets; every other capability leaves the bounding set (when we may still
 * change it), the inheritable and ambient sets are emptied (our daemons
 * execute nothing), and no_new_privs is set. Afterwards the result is
 * verified: real, effective and saved ids are the user's, setuid(0) fails
 * and the capability sets are exactly `keep_caps`.
 *
 * Returns 0; -ENOENT when `user` does not exist (logged with its name and
 * how to create it); -EPERM when the process may not become `user` or the
 * verification fails; another -errno from the system calls. Every failure
 * is logged. A daemon treats any failure as fatal.
 */
int priv_drop(const char *user, const uint64_t keep_caps);

/*
 * The allow-lists of priv_seccomp(). All share the event loop, TCP/UDP and
 * Unix sockets, files for SQLite and logs, OpenSSL and the allocator;
 * socket() is limited to AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK and
 * ioctl() to a short list of requests. The TEP and the client add raw
 * sockets and the TUN and interface ioctls.
 */
enum priv_profile {
	PRIV_PROFILE_DSTMD,  /* TSP server, DHCPv6, SQLite, control socket */
	PRIV_PROFILE_TEP,    /* + TUN, raw IPv6/IPv4 sockets, netlink */
	PRIV_PROFILE_CLIENT, /* + TUN, raw IPv6 socket, netlink */
};

/*
 * Install the filter of `profile` on every thread of the process (it
 * cannot be removed). A system call outside the list kills the process
 * with SIGSYS (the kernel logs it), unless the environment variable
 * DSTM_SECCOMP is "log": then it is allowed and only logged by the kernel
 * (audit / dmesg "type=1326"), which is how a missing entry is found.
 * DSTM_SECCOMP=off installs nothing (and says so in the log).
 * Returns 0 or -errno (logged).
 */
int priv_seccomp(enum priv_profile profile);

#endif
