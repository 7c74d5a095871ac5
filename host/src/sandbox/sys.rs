//! Thin wrappers over the system calls the init makes.

use rustix::io::Errno;
use rustix::thread::{CapabilitySet, UnshareFlags};

/// `unshare(flags)` for namespaces only.
///
/// Only called from the init, which is single-threaded.
#[expect(
    unsafe_code,
    reason = "rustix marks unshare unsafe because of CLONE_FILES"
)]
pub(super) fn unshare_namespaces(flags: UnshareFlags) -> Result<(), Errno> {
    debug_assert!(!flags.contains(UnshareFlags::FILES));
    let flags = flags & !UnshareFlags::FILES;
    // SAFETY: the hazard rustix guards against is `CLONE_FILES`, which can
    // leave another thread using descriptors from a table this thread no
    // longer shares; it is masked out above, and the init calling this is a
    // freshly exec'd, single-threaded process.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}

/// Whether `cap` is in this thread's effective set.
pub(super) fn has_effective_cap(cap: CapabilitySet) -> bool {
    rustix::thread::capabilities(None).is_ok_and(|c| c.effective.contains(cap))
}

/// Maps uid and gid 0 inside a new user namespace to the caller's ids
/// outside (the only mapping an unprivileged process may write).
pub(super) fn write_single_id_maps(uid: u32, gid: u32) -> std::io::Result<()> {
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1\n"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1\n"))?;
    Ok(())
}

/// BuildKit's default capabilities, without `CAP_MKNOD` (kiln has no device
/// cgroup to make device nodes harmless) and, if `chroot` is false, without
/// `CAP_SYS_CHROOT`.
fn kept(chroot: bool) -> CapabilitySet {
    let mut caps = CapabilitySet::CHOWN
        | CapabilitySet::DAC_OVERRIDE
        | CapabilitySet::FOWNER
        | CapabilitySet::FSETID
        | CapabilitySet::KILL
        | CapabilitySet::SETGID
        | CapabilitySet::SETUID
        | CapabilitySet::SETPCAP
        | CapabilitySet::NET_BIND_SERVICE
        | CapabilitySet::NET_RAW
        | CapabilitySet::SETFCAP
        | CapabilitySet::AUDIT_WRITE;
    if chroot {
        caps |= CapabilitySet::SYS_CHROOT;
    }
    caps
}

/// Removes everything but [`kept`] from the bounding set and clears the
/// ambient set. Needs `CAP_SETPCAP`; without it (an unprivileged process in
/// chroot or host-root mode) there is nothing to drop and this is a no-op.
pub(super) fn limit_bounding_set(chroot: bool) -> Result<(), Errno> {
    if !has_effective_cap(CapabilitySet::SETPCAP) {
        return Ok(());
    }
    let keep = kept(chroot);
    for cap in CapabilitySet::all().iter() {
        if !keep.contains(cap) {
            match rustix::thread::remove_capability_from_bounding_set(cap) {
                Ok(()) | Err(Errno::INVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
    match rustix::thread::clear_ambient_capability_set() {
        Ok(()) | Err(Errno::INVAL) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reduces the effective, permitted and inheritable sets to [`kept`]
/// (after a switch to a non-zero uid the kernel has already cleared them).
pub(super) fn limit_capability_sets(chroot: bool) -> Result<(), Errno> {
    let keep = kept(chroot);
    let mut sets = rustix::thread::capabilities(None)?;
    sets.effective &= keep;
    sets.permitted &= keep;
    sets.inheritable &= keep;
    rustix::thread::set_capabilities(None, sets)
}

/// Brings `lo` up in a fresh network namespace, over rtnetlink.
pub(super) fn loopback_up() -> std::io::Result<()> {
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, netlink};
    let fd = rustix::net::socket(
        AddressFamily::NETLINK,
        SocketType::RAW,
        None, // NETLINK_ROUTE is protocol 0
    )?;
    let index = rustix::net::netdevice::name_to_index(&fd, "lo")?;
    // struct nlmsghdr (16 bytes) + struct ifinfomsg (16 bytes).
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const IFF_UP: u32 = 1;
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    msg.push(0); // AF_UNSPEC
    msg.push(0);
    msg.extend_from_slice(&0u16.to_ne_bytes()); // device type
    msg.extend_from_slice(&(index as i32).to_ne_bytes());
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // flags
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // change mask
    let kernel = netlink::SocketAddrNetlink::new(0, 0);
    rustix::net::sendto(&fd, &msg, SendFlags::empty(), &kernel)?;
    let mut buf = [0u8; 512];
    let (n, _) = rustix::net::recv(&fd, &mut buf, RecvFlags::empty())?;
    // The ack is an NLMSG_ERROR (type 2) whose first field is -errno or 0.
    if n >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == 2 {
        let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if err != 0 {
            return Err(std::io::Error::from_raw_os_error(-err));
        }
    }
    Ok(())
}
