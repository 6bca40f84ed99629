//! The one UDP socket every WebRTC session uses, and the address each datagram was
//! sent to: ICE answers a check only on the candidate it arrived at, and a socket on
//! `0.0.0.0` learns that address from `IP_PKTINFO` (no crate reads it on Linux; written
//! here with `recvmsg`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::io::Interest;
use tokio::net::UdpSocket;

pub(crate) struct UdpPort {
    pub socket: UdpSocket,
    pub local: SocketAddr,
}

/// Receive buffer unless `udpReadBufferSize` sets one: many sessions' media (WHIP
/// publishers, viewers' RTCP) arrive on this one socket.
const RECV_BUFFER: usize = 4 << 20;

impl UdpPort {
    pub(crate) fn bind(addr: SocketAddr, rcvbuf: usize) -> io::Result<UdpPort> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            s.set_only_v6(false)?;
        }
        match rcvbuf {
            0 => {
                let _ = s.set_recv_buffer_size(RECV_BUFFER);
            }
            n => s.set_recv_buffer_size(n)?,
        }
        s.set_nonblocking(true)?;
        enable_pktinfo(&s, addr.is_ipv6())?;
        s.bind(&addr.into())?;
        let socket = UdpSocket::from_std(s.into())?;
        let local = socket.local_addr()?;
        Ok(UdpPort { socket, local })
    }

    /// The next datagram: its length in `buf`, source, and the local address it was
    /// sent to.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        loop {
            self.socket.readable().await?;
            match self
                .socket
                .try_io(Interest::READABLE, || recv_with_dst(&self.socket, buf))
            {
                Ok((n, src, dst)) => {
                    let dst = match dst {
                        Some(ip) => SocketAddr::new(ip, self.local.port()),
                        None => self.local,
                    };
                    return Ok((n, unmap(src), unmap(dst)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// `::ffff:a.b.c.d` (a dual-stack socket's view of IPv4) as plain IPv4.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

#[cfg(target_os = "linux")]
fn enable_pktinfo(s: &socket2::Socket, v6: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    let set = |level, name| {
        // SAFETY: a valid fd and a c_int option value of the right size.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                level,
                name,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        match r {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    };
    set(libc::IPPROTO_IP, libc::IP_PKTINFO)?;
    if v6 {
        set(libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn enable_pktinfo(_: &socket2::Socket, _: bool) -> io::Result<()> {
    Ok(())
}

/// One `recvmsg`: length, source, and the destination address from the control data.
#[cfg(target_os = "linux")]
fn recv_with_dst(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<IpAddr>)> {
    use std::os::fd::AsRawFd;
    // SAFETY: all-zero is a valid sockaddr_storage and msghdr.
    let mut src: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one in_pktinfo or in6_pktinfo control message, 8-aligned.
    let mut control = [0u64; 16];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut src as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in msg points at a live local of the size given.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let src = sockaddr_to_std(&src).ok_or_else(|| io::Error::other("unknown address family"))?;
    let mut dst = None;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info: libc::in_pktinfo =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    dst = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        info.ipi_addr.s_addr,
                    ))));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info: libc::in6_pktinfo =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, src, dst))
}

#[cfg(not(target_os = "linux"))]
fn recv_with_dst(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<IpAddr>)> {
    let (n, src) = sock.try_recv_from(buf)?;
    Ok((n, src, None))
}

#[cfg(target_os = "linux")]
fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)),
                u16::from_be(a.sin6_port),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_socket_on_every_interface_learns_where_each_datagram_went() {
        let port = UdpPort::bind("0.0.0.0:0".parse().unwrap(), 0).unwrap();
        let to = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port.local.port());
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"hello", to).unwrap();
        let mut buf = [0u8; 64];
        let (n, src, dst) =
            tokio::time::timeout(std::time::Duration::from_secs(5), port.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(src, client.local_addr().unwrap());
        assert_eq!(dst, to);
    }
}
