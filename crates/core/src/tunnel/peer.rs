//! Whose connection is it? A tunnel is an open door into the user's session (JupyterLab
//! without a token, a shell in ttyd), and on a shared machine every local user can connect
//! to every loopback port. A [`PeerGuard`] finds the user id owning the client end of each
//! accepted loopback connection and lets only the tunnel's owner (and root) through.
//!
//! On Linux the kernel says who owns a socket: a `sock_diag` netlink query for the exact
//! connection (what `ss` uses; one round trip into the kernel, no file to read), with
//! `/proc/net/tcp{,6}` as the fallback where netlink is not allowed. Other platforms have no
//! guard ([`PeerGuard::for_this_user`] gives `None`); the README says so.

use std::net::{IpAddr, SocketAddr};

/// What the guard decided about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerVerdict {
    /// The owner, or root.
    Allowed,
    /// Another user: closed before anything reaches the server.
    Refused {
        /// The peer's user id.
        uid: u32,
    },
    /// The peer could not be identified (it closed at once, or the kernel would not say):
    /// refused too, since it cannot be shown to be the owner.
    Unknown(String),
}

/// Lets through only connections whose client end belongs to the owner or to root.
#[derive(Debug)]
pub struct PeerGuard {
    owner: u32,
    /// The netlink socket of the lookups, kept between connections (opening one costs as
    /// much as the lookup itself).
    #[cfg(target_os = "linux")]
    diag: std::sync::Mutex<Option<linux::SockDiag>>,
}

impl PeerGuard {
    /// A guard for the user running this process, where the platform can tell who is on
    /// the other end of a loopback connection (Linux); `None` elsewhere.
    pub fn for_this_user() -> Option<PeerGuard> {
        #[cfg(target_os = "linux")]
        {
            Some(PeerGuard::for_user(linux::effective_uid()))
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// A guard for `owner` (tests, and a process acting for another user).
    pub fn for_user(owner: u32) -> PeerGuard {
        PeerGuard {
            owner,
            #[cfg(target_os = "linux")]
            diag: std::sync::Mutex::new(None),
        }
    }

    /// The user id the guard lets in (besides root).
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Decides about the connection from `peer` accepted on `local`.
    pub fn check(&self, local: SocketAddr, peer: SocketAddr) -> PeerVerdict {
        #[cfg(target_os = "linux")]
        let uid = {
            let mut diag = self
                .diag
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            linux::peer_uid_with(&mut diag, local, peer)
        };
        #[cfg(not(target_os = "linux"))]
        let uid = peer_uid(local, peer);
        match uid {
            Ok(uid) if uid == self.owner || uid == 0 => PeerVerdict::Allowed,
            Ok(uid) => PeerVerdict::Refused { uid },
            Err(e) => PeerVerdict::Unknown(e),
        }
    }
}

/// The user id owning the client socket `peer` → `local` on this machine.
pub fn peer_uid(local: SocketAddr, peer: SocketAddr) -> Result<u32, String> {
    #[cfg(target_os = "linux")]
    {
        linux::peer_uid(local, peer)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (local, peer);
        Err("this platform cannot tell who owns a connection".to_owned())
    }
}

/// The login name of `uid` from the password database, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&passwd, uid)
}

fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// How a user is named in messages: `bob`, or `uid 1234` when it has no name.
pub fn describe_user(uid: u32) -> String {
    user_name(uid).map_or_else(|| format!("uid {uid}"), |name| name.to_owned())
}

/// Whether connections to `ip` can only come from this machine, so that the guard applies.
pub fn is_local_only(ip: IpAddr) -> bool {
    ip.is_loopback()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::net::{IpAddr, SocketAddr};
    use std::os::fd::{AsRawFd, OwnedFd};

    use nix::sys::socket::{
        recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };

    /// `SOCK_DIAG_BY_FAMILY`: the request type of `inet_diag`.
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_HEADER_LEN: usize = 16;
    /// `struct inet_diag_req_v2` with its `inet_diag_sockid`.
    const REQUEST_LEN: usize = 56;
    /// Where `idiag_uid` sits in `struct inet_diag_msg`: family, state, timer, retrans (4),
    /// the socket id (48), expires, rqueue, wqueue (12).
    const UID_OFFSET: usize = 64;
    const IPPROTO_TCP: u8 = 6;
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;

    pub(super) fn effective_uid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    pub(super) fn peer_uid(local: SocketAddr, peer: SocketAddr) -> Result<u32, String> {
        peer_uid_with(&mut None, local, peer)
    }

    /// The same, asking through `diag` (opened on first use, dropped after a failure).
    pub(super) fn peer_uid_with(
        diag: &mut Option<SockDiag>,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Result<u32, String> {
        let asked = match diag {
            Some(socket) => socket.owner(local, peer),
            None => SockDiag::open().and_then(|mut socket| {
                let owner = socket.owner(local, peer);
                *diag = Some(socket);
                owner
            }),
        };
        match asked {
            Ok(Some(uid)) => Ok(uid),
            Ok(None) => Err("the connection is already gone".to_owned()),
            // Netlink refused (a restricted sandbox): the socket tables in /proc say it too.
            Err(netlink) => {
                *diag = None;
                proc_net_uid(local, peer)
                    .map_err(|e| format!("cannot find the peer ({netlink}; {e})"))
            }
        }
    }

    /// The `sock_diag` request for the client socket `peer` → `local`, numbered `seq`.
    pub(super) fn request(local: SocketAddr, peer: SocketAddr, seq: u32) -> Vec<u8> {
        let family = if peer.is_ipv4() { AF_INET } else { AF_INET6 };
        let len = NLMSG_HEADER_LEN + REQUEST_LEN;
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        msg.extend_from_slice(&[family, IPPROTO_TCP, 0, 0]);
        msg.extend_from_slice(&u32::MAX.to_ne_bytes()); // every TCP state
                                                        // The client's socket: its source is the peer, its destination our listener.
        msg.extend_from_slice(&peer.port().to_be_bytes());
        msg.extend_from_slice(&local.port().to_be_bytes());
        msg.extend_from_slice(&address_bytes(peer.ip()));
        msg.extend_from_slice(&address_bytes(local.ip()));
        msg.extend_from_slice(&0u32.to_ne_bytes()); // any interface
        msg.extend_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
        msg
    }

    fn address_bytes(ip: IpAddr) -> [u8; 16] {
        let mut out = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out = v6.octets(),
        }
        out
    }

    /// Reads the owner out of the kernel's answer: `Some(uid)`, `None` when the kernel has
    /// no such socket.
    pub(super) fn parse_reply(reply: &[u8]) -> Result<Option<u32>, String> {
        if reply.len() < NLMSG_HEADER_LEN {
            return Err(format!("a {}-byte netlink reply", reply.len()));
        }
        let kind = u16::from_ne_bytes([reply[4], reply[5]]);
        if kind == NLMSG_ERROR {
            let errno = reply
                .get(NLMSG_HEADER_LEN..NLMSG_HEADER_LEN + 4)
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0);
            return if -errno == nix::libc::ENOENT {
                Ok(None)
            } else {
                Err(format!(
                    "sock_diag: {}",
                    io::Error::from_raw_os_error(-errno)
                ))
            };
        }
        if kind != SOCK_DIAG_BY_FAMILY {
            return Err(format!("an unexpected netlink reply (type {kind})"));
        }
        let at = NLMSG_HEADER_LEN + UID_OFFSET;
        reply
            .get(at..at + 4)
            .map(|b| Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])))
            .ok_or_else(|| "a short sock_diag reply".to_owned())
    }

    /// A `NETLINK_SOCK_DIAG` socket: one request, one reply at a time.
    #[derive(Debug)]
    pub(super) struct SockDiag {
        fd: OwnedFd,
        seq: u32,
    }

    impl SockDiag {
        pub(super) fn open() -> Result<SockDiag, String> {
            let fd = socket(
                AddressFamily::Netlink,
                SockType::Datagram,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkSockDiag,
            )
            .map_err(|e| format!("netlink socket: {e}"))?;
            Ok(SockDiag { fd, seq: 0 })
        }

        /// Who owns the client socket `peer` → `local`: `None` when there is none.
        pub(super) fn owner(
            &mut self,
            local: SocketAddr,
            peer: SocketAddr,
        ) -> Result<Option<u32>, String> {
            self.seq = self.seq.wrapping_add(1);
            let kernel = NetlinkAddr::new(0, 0);
            sendto(
                self.fd.as_raw_fd(),
                &request(local, peer, self.seq),
                &kernel,
                MsgFlags::empty(),
            )
            .map_err(|e| format!("sock_diag request: {e}"))?;
            let mut reply = [0u8; 512];
            loop {
                let n = recv(self.fd.as_raw_fd(), &mut reply, MsgFlags::empty())
                    .map_err(|e| format!("sock_diag reply: {e}"))?;
                // A reply to an earlier request (its reader gave up) is not this one's.
                let seq = reply
                    .get(8..12)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                if seq == Some(self.seq) || n < NLMSG_HEADER_LEN {
                    return parse_reply(&reply[..n]);
                }
            }
        }
    }

    /// The same answer from `/proc/net/tcp{,6}`: the line whose local address is the peer
    /// and remote address our listener.
    pub(super) fn proc_net_uid(local: SocketAddr, peer: SocketAddr) -> Result<u32, String> {
        let file = if peer.is_ipv4() {
            "/proc/net/tcp"
        } else {
            "/proc/net/tcp6"
        };
        let table = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        let (want_local, want_remote) = (proc_address(peer), proc_address(local));
        table
            .lines()
            .skip(1)
            .find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.get(1) == Some(&want_local.as_str())
                    && fields.get(2) == Some(&want_remote.as_str()))
                .then(|| fields.get(7)?.parse().ok())
                .flatten()
            })
            .ok_or_else(|| format!("no line for {peer} -> {local} in {file}"))
    }

    /// An address as `/proc/net/tcp` writes it: each 32-bit word of the address in host
    /// order as hex, a colon, the port in hex.
    pub(super) fn proc_address(addr: SocketAddr) -> String {
        let words: Vec<u32> = match addr.ip() {
            IpAddr::V4(v4) => vec![u32::from_ne_bytes(v4.octets())],
            IpAddr::V6(v6) => v6
                .octets()
                .chunks(4)
                .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        };
        let mut out: String = words.iter().map(|w| format!("{w:08X}")).collect();
        out.push_str(&format!(":{:04X}", addr.port()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_password_database() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 1001).as_deref(), Some("bob"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 7), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn proc_addresses_are_written_like_the_kernel() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(linux::proc_address(v4), "0100007F:1F90");
        let v6: SocketAddr = "[::1]:22".parse().unwrap();
        assert_eq!(
            linux::proc_address(v6),
            "00000000000000000000000001000000:0016"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_names_the_owner_of_our_own_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(local).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let guard = PeerGuard::for_this_user().unwrap();
        assert_eq!(peer_uid(local, peer), Ok(guard.owner()));
        assert_eq!(
            linux::proc_net_uid(local, peer),
            Ok(guard.owner()),
            "the fallback agrees"
        );
        assert_eq!(guard.check(local, peer), PeerVerdict::Allowed);
        // Another owner is refused, unless the peer is root.
        let other = PeerGuard::for_user(guard.owner() + 4242);
        let verdict = other.check(local, peer);
        if guard.owner() == 0 {
            assert_eq!(verdict, PeerVerdict::Allowed, "root passes");
        } else {
            assert_eq!(verdict, PeerVerdict::Refused { uid: guard.owner() });
        }
        // A connection that does not exist is unknown, not allowed.
        let nowhere: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(
            guard.check(local, nowhere),
            PeerVerdict::Unknown(_)
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_replies_are_read_defensively() {
        assert!(linux::parse_reply(&[0; 4]).is_err());
        let mut not_found = vec![0u8; 36];
        not_found[4..6].copy_from_slice(&2u16.to_ne_bytes());
        not_found[16..20].copy_from_slice(&(-nix::libc::ENOENT).to_ne_bytes());
        assert_eq!(linux::parse_reply(&not_found), Ok(None));
        let mut short = vec![0u8; 40];
        short[4..6].copy_from_slice(&20u16.to_ne_bytes());
        assert!(linux::parse_reply(&short).is_err());
        let request = linux::request(
            "127.0.0.1:80".parse().unwrap(),
            "127.0.0.1:5000".parse().unwrap(),
            7,
        );
        assert_eq!(request.len(), 72);
        assert_eq!(&request[24..26], &5000u16.to_be_bytes(), "source: the peer");
    }
}
