//! Which local process opened an accepted loopback connection. The coordinator's and the
//! peers' connections to an agent reach the same listener, and TLS hides who they are, so
//! the proxy asks the kernel: the client's end of the connection is the socket whose local
//! address is the accepted connection's peer address (and whose remote address is the
//! listener's); `/proc/net/tcp{,6}` gives its inode, and the process holding that inode
//! has it among its `/proc/<pid>/fd` links.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpStream;

/// The name of the candidate (PID, name) that holds the client end of `accepted`, if any.
pub(super) fn owner(accepted: &TcpStream, candidates: &[(u32, String)]) -> Option<String> {
    let inode = client_inode(accepted.peer_addr().ok()?, accepted.local_addr().ok()?)?;
    let target = format!("socket:[{inode}]");
    candidates.iter().find(|(pid, _)| holds(*pid, &target)).map(|(_, name)| name.clone())
}

/// The inode of the socket bound at `client` and connected to `server`.
fn client_inode(client: SocketAddr, server: SocketAddr) -> Option<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|table| {
        let text = std::fs::read_to_string(table).ok()?;
        text.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, inode) = (f.get(1)?, f.get(2)?, f.get(9)?);
            let matches = parse(local)? == client && parse(remote)? == server;
            // A socket with inode 0 is in TIME_WAIT: no process holds it.
            inode.parse().ok().filter(|i| matches && *i != 0)
        })
    })
}

/// `0100007F:1F90` (tcp) or 32 hex digits and a port (tcp6): each 32-bit word in the
/// kernel's byte order. An IPv4-mapped IPv6 address comes back as IPv4.
fn parse(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| ip.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok());
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?.to_ne_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(i)?.to_ne_bytes());
            }
            Ipv6Addr::from(bytes).to_canonical()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn holds(pid: u32, target: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn proc_net_tcp_addresses_parse_in_kernel_byte_order() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().expect("an address");
        assert_eq!(parse("0100007F:1F90"), Some(v4));
        assert_eq!(parse("0000000000000000FFFF00000100007F:1F90"), Some(v4));
        let v6: SocketAddr = "[::1]:8080".parse().expect("an address");
        assert_eq!(parse("00000000000000000000000001000000:1F90"), Some(v6));
        assert_eq!(parse("junk"), None);
    }
}
