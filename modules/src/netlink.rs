//! The few rtnetlink questions the network facts ask the kernel: every address (what
//! `ip addr` prints), the route to one destination (`ip route get`) and every route (`ip route
//! show table local`). Asked over one netlink socket, so gathering facts spawns no `ip`.

use std::io;
use std::net::IpAddr;

const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;

/// The `secondary` flag of an IPv4 address (`temporary` for IPv6: the same bit).
pub(crate) const IFA_F_SECONDARY: u32 = 0x01;
pub(crate) const RTN_UNICAST: u8 = 1;
pub(crate) const RTN_LOCAL: u8 = 2;
pub(crate) const RT_TABLE_LOCAL: u32 = 255;

/// One address of one interface, as the kernel lists it.
#[derive(Debug, Clone)]
pub(crate) struct Address {
    pub index: u32,
    pub prefix: u8,
    pub flags: u32,
    pub scope: u8,
    /// The interface's own address (`IFA_LOCAL`, else `IFA_ADDRESS`).
    pub local: IpAddr,
    /// The peer of a point-to-point address, when it differs from `local`.
    pub peer: Option<IpAddr>,
    pub broadcast: Option<IpAddr>,
    /// The IPv4 label (`eth0:1`).
    pub label: Option<String>,
}

/// One route, as the kernel lists it.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub kind: u8,
    pub table: u32,
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub prefsrc: Option<IpAddr>,
}

struct Socket(libc::c_int);

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe {
            libc::close(self.0);
        }
    }
}

impl Socket {
    fn open() -> io::Result<Socket> {
        // SAFETY: plain socket(2); the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel answers at once; a bound on the wait keeps a misbehaving one from holding
        // the gathering forever.
        let timeout = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: setsockopt reads a timeval of the size given.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        Ok(Socket(fd))
    }

    /// Sends one request and returns the payloads (type, body) of the kernel's answers.
    fn ask(&self, kind: u16, flags: u16, body: &[u8]) -> io::Result<Vec<(u16, Vec<u8>)>> {
        let mut message = Vec::with_capacity(16 + body.len());
        message.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        message.extend_from_slice(&kind.to_ne_bytes());
        message.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        message.extend_from_slice(&1u32.to_ne_bytes());
        message.extend_from_slice(&0u32.to_ne_bytes());
        message.extend_from_slice(body);
        // SAFETY: the kernel's address is a zeroed sockaddr_nl with only the family set.
        let sent = unsafe {
            let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
            kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.0,
                message.as_ptr().cast(),
                message.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut answers = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: recv into a buffer we own, of the length given.
            let got = unsafe { libc::recv(self.0, buffer.as_mut_ptr().cast(), buffer.len(), 0) };
            if got < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            let mut rest = &buffer[..got as usize];
            while rest.len() >= 16 {
                let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                if len < 16 || len > rest.len() {
                    return Err(io::Error::other("a truncated netlink message"));
                }
                let payload = &rest[16..len];
                match kind {
                    NLMSG_DONE => return Ok(answers),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        if code == 0 {
                            return Ok(answers);
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => answers.push((kind, payload.to_vec())),
                }
                if flags & NLM_F_DUMP == 0 {
                    return Ok(answers);
                }
                rest = &rest[align(len).min(rest.len())..];
            }
        }
    }
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// The attributes (type, data) that follow a fixed header of `skip` bytes.
fn attributes(payload: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut rest = payload.get(skip..).unwrap_or_default();
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            break;
        }
        out.push((kind, &rest[4..len]));
        rest = &rest[align(len).min(rest.len())..];
    }
    out
}

fn ip(family: u8, data: &[u8]) -> Option<IpAddr> {
    match (i32::from(family), data.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::from([data[0], data[1], data[2], data[3]])),
        (libc::AF_INET6, 16) => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(data);
            Some(IpAddr::from(octets))
        }
        _ => None,
    }
}

fn u32_of(data: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(data.get(..4)?.try_into().ok()?))
}

/// Every address of every interface, IPv4 then IPv6, in the kernel's order.
pub(crate) fn addresses() -> io::Result<Vec<Address>> {
    let socket = Socket::open()?;
    let mut out = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        let request = [family as u8, 0, 0, 0, 0, 0, 0, 0];
        for (kind, payload) in socket.ask(RTM_GETADDR, NLM_F_DUMP, &request)? {
            if kind != RTM_NEWADDR || payload.len() < 8 {
                continue;
            }
            let family = payload[0];
            let mut address = None;
            let mut local = None;
            let mut broadcast = None;
            let mut label = None;
            let mut flags = u32::from(payload[2]);
            for (attr, data) in attributes(&payload, 8) {
                match attr {
                    IFA_ADDRESS => address = ip(family, data),
                    IFA_LOCAL => local = ip(family, data),
                    IFA_BROADCAST => broadcast = ip(family, data),
                    IFA_LABEL => {
                        let text = data.split(|b| *b == 0).next().unwrap_or_default();
                        label = Some(String::from_utf8_lossy(text).into_owned());
                    }
                    IFA_FLAGS => flags = u32_of(data).unwrap_or(flags),
                    _ => {}
                }
            }
            let Some(own) = local.or(address) else {
                continue;
            };
            out.push(Address {
                index: u32_of(&payload[4..8]).unwrap_or(0),
                prefix: payload[1],
                flags,
                scope: payload[3],
                local: own,
                peer: address.filter(|a| local.is_some() && *a != own),
                broadcast,
                label,
            });
        }
    }
    Ok(out)
}

/// The route the kernel would use to reach `destination` (`ip route get`); `None` when there
/// is none.
pub(crate) fn route_to(destination: IpAddr) -> Option<Route> {
    let socket = Socket::open().ok()?;
    let (family, bytes, len) = match destination {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec(), 32u8),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec(), 128u8),
    };
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32).
    let mut request = vec![family, len, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    request.extend_from_slice(&((4 + bytes.len()) as u16).to_ne_bytes());
    request.extend_from_slice(&RTA_DST.to_ne_bytes());
    request.extend_from_slice(&bytes);
    let answers = socket.ask(RTM_GETROUTE, 0, &request).ok()?;
    answers
        .iter()
        .filter(|(kind, _)| *kind == RTM_NEWROUTE)
        .find_map(|(_, payload)| route(payload))
}

/// Every route of one family (`ip route show table all`), in the kernel's order.
pub(crate) fn routes(family: i32) -> io::Result<Vec<Route>> {
    let socket = Socket::open()?;
    let request = [family as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    Ok(socket
        .ask(RTM_GETROUTE, NLM_F_DUMP, &request)?
        .iter()
        .filter(|(kind, _)| *kind == RTM_NEWROUTE)
        .filter_map(|(_, payload)| route(payload))
        .collect())
}

fn route(payload: &[u8]) -> Option<Route> {
    if payload.len() < 12 {
        return None;
    }
    let family = payload[0];
    let mut found = Route {
        kind: payload[7],
        table: u32::from(payload[4]),
        dst: None,
        dst_len: payload[1],
        oif: None,
        gateway: None,
        prefsrc: None,
    };
    for (attr, data) in attributes(payload, 12) {
        match attr {
            RTA_DST => found.dst = ip(family, data),
            RTA_OIF => found.oif = u32_of(data),
            RTA_GATEWAY => found.gateway = ip(family, data),
            RTA_PREFSRC => found.prefsrc = ip(family, data),
            RTA_TABLE => found.table = u32_of(data).unwrap_or(found.table),
            _ => {}
        }
    }
    Some(found)
}

/// The name of the interface with this index.
pub(crate) fn interface_name(index: u32) -> Option<String> {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes, NUL-terminated, into `name`.
    let found = unsafe { libc::if_indextoname(index, name.as_mut_ptr()) };
    if found.is_null() {
        return None;
    }
    // SAFETY: on success `name` holds a NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    Some(text.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_read_with_their_padding() {
        // Two attributes: a 5-byte label (padded to 8) and a 4-byte value.
        let mut payload = vec![0u8; 8];
        payload.extend_from_slice(&5u16.to_ne_bytes());
        payload.extend_from_slice(&IFA_LABEL.to_ne_bytes());
        payload.extend_from_slice(&[b'l', 0, 0, 0]);
        payload.extend_from_slice(&8u16.to_ne_bytes());
        payload.extend_from_slice(&IFA_FLAGS.to_ne_bytes());
        payload.extend_from_slice(&0x80u32.to_ne_bytes());
        let found = attributes(&payload, 8);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], (IFA_LABEL, &b"l"[..]));
        assert_eq!(u32_of(found[1].1), Some(0x80));
        assert!(attributes(&payload[..10], 8).is_empty());
    }

    #[test]
    fn the_host_has_a_loopback_address() {
        let Ok(all) = addresses() else {
            return;
        };
        assert!(
            all.is_empty()
                || all
                    .iter()
                    .any(|a| a.local.is_loopback() || a.local.is_ipv6())
        );
    }
}
