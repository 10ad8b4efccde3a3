//! Spreading client sockets over several loopback source addresses.
//!
//! A TCP connection is identified by its 4-tuple, so one source address can
//! hold at most one connection per ephemeral port towards a given server
//! (about 28,000 with Linux's default range). Binding connection `i` to
//! 127.0.0.(2 + i % n) multiplies that ceiling by `n`; the whole 127/8 block
//! is routed to the loopback interface, so no set-up is needed.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use tokio::net::{TcpSocket, TcpStream};

/// Segment size of a narrow client (see [`Sources::connect_narrow`]).
const NARROW_SEGMENT: libc::c_int = 536;

/// Round-robin choice of source address.
#[derive(Debug, Clone, Copy)]
pub struct Sources {
    count: u8,
}

impl Sources {
    /// `count` addresses starting at 127.0.0.2; zero means "let the kernel
    /// choose", i.e. 127.0.0.1.
    pub fn new(count: u8) -> Sources {
        Sources {
            count: count.min(250),
        }
    }

    pub fn for_connection(&self, index: usize) -> Option<Ipv4Addr> {
        if self.count == 0 {
            return None;
        }
        let host = 2 + (index % usize::from(self.count)) as u8;
        Some(Ipv4Addr::new(127, 0, 0, host))
    }

    /// Opens a TCP connection to `server` from the source address chosen
    /// for connection `index`.
    pub async fn connect(&self, index: usize, server: SocketAddr) -> std::io::Result<TcpStream> {
        self.connect_narrow(index, server, None).await
    }

    /// Like [`connect`](Self::connect), as a client with little room for
    /// what it has not read: a small receive buffer, and a small segment
    /// size, which keeps the server's send buffer small too (Linux sizes it
    /// from the segment size). On loopback a server's send buffer otherwise
    /// grows past a megabyte, holding minutes of a slow stream.
    /// With `None`, an ordinary connection.
    pub async fn connect_narrow(
        &self,
        index: usize,
        server: SocketAddr,
        recv_buffer: Option<u32>,
    ) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size)?;
            set_int_option(&socket, libc::IPPROTO_TCP, libc::TCP_MAXSEG, NARROW_SEGMENT)?;
        }
        if let Some(ip) = self.for_connection(index) {
            bind_no_port(&socket)?;
            socket.bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))?;
        }
        let stream = socket.connect(server).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Without IP_BIND_ADDRESS_NO_PORT, `bind(ip, 0)` reserves a port for the
/// address regardless of destination, which brings back the very limit the
/// spread is meant to lift. With it the port is picked at `connect` time,
/// unique per 4-tuple.
fn bind_no_port(socket: &TcpSocket) -> std::io::Result<()> {
    set_int_option(socket, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1)
}

fn set_int_option(
    socket: &TcpSocket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: the fd is a live socket owned by `socket`; `value` outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_over_addresses() {
        let s = Sources::new(3);
        let hosts: Vec<_> = (0..4).map(|i| s.for_connection(i).unwrap()).collect();
        assert_eq!(hosts[0], Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(hosts[2], Ipv4Addr::new(127, 0, 0, 4));
        assert_eq!(hosts[3], Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(Sources::new(0).for_connection(5), None);
    }

    #[tokio::test]
    async fn connects_from_spread_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        let client = Sources::new(2).connect(1, server).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!(client.local_addr().unwrap().ip(), peer.ip());
    }
}
