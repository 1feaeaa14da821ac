//! Sans-IO demultiplexing of the one media socket: a STUN binding request is routed by the
//! local ufrag in its USERNAME attribute (`<our ufrag>:<peer ufrag>`) and binds the sender's
//! address to that session; every other datagram (STUN responses and indications, DTLS, SRTP,
//! SRTCP) is routed by its source address. Anything else is dropped and counted by the driver.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;

/// Most remote addresses one session may bind (its candidates' 5-tuples).
pub const MAX_ADDRS_PER_SESSION: usize = 8;

const STUN_MAGIC_COOKIE: u32 = 0x2112_A442;
const ATTR_USERNAME: u16 = 0x0006;

/// Where a datagram goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<Id> {
    Session(Id),
    /// A STUN message whose ufrag names no session.
    UnknownUfrag,
    /// Not STUN, from an address no session has bound.
    UnknownAddr,
    /// STUN without a usable USERNAME (e.g. a binding response) from an address no session has bound.
    NoUsername,
}

/// The routing tables.
#[derive(Debug)]
pub struct UdpMux<Id> {
    by_ufrag: HashMap<String, Id>,
    by_addr: HashMap<SocketAddr, Id>,
    addrs_of: HashMap<Id, Vec<SocketAddr>>,
}

impl<Id> Default for UdpMux<Id> {
    fn default() -> Self {
        UdpMux { by_ufrag: HashMap::new(), by_addr: HashMap::new(), addrs_of: HashMap::new() }
    }
}

impl<Id: Clone + Eq + Hash> UdpMux<Id> {
    /// Registers a session under its local ICE ufrag.
    pub fn add(&mut self, ufrag: String, id: Id) {
        self.by_ufrag.insert(ufrag, id.clone());
        self.addrs_of.entry(id).or_default();
    }

    /// Forgets a session: its ufrag and every address it bound.
    pub fn remove(&mut self, id: &Id) {
        self.by_ufrag.retain(|_, v| v != id);
        for addr in self.addrs_of.remove(id).unwrap_or_default() {
            if self.by_addr.get(&addr) == Some(id) {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// Sessions registered.
    pub fn len(&self) -> usize {
        self.by_ufrag.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ufrag.is_empty()
    }

    /// Routes one datagram from `from`.
    pub fn route(&mut self, datagram: &[u8], from: SocketAddr) -> Route<Id> {
        if is_stun(datagram) {
            // Responses to our own checks and indications carry no USERNAME: by address.
            let Some(ufrag) = stun_local_ufrag(datagram) else {
                return match self.by_addr.get(&from) {
                    Some(id) => Route::Session(id.clone()),
                    None => Route::NoUsername,
                };
            };
            let Some(id) = self.by_ufrag.get(ufrag).cloned() else { return Route::UnknownUfrag };
            let addrs = self.addrs_of.entry(id.clone()).or_default();
            if !addrs.contains(&from) && addrs.len() < MAX_ADDRS_PER_SESSION {
                addrs.push(from);
                if let Some(previous) = self.by_addr.insert(from, id.clone()) {
                    if previous != id {
                        if let Some(list) = self.addrs_of.get_mut(&previous) {
                            list.retain(|a| *a != from);
                        }
                    }
                }
            }
            return Route::Session(id);
        }
        match self.by_addr.get(&from) {
            Some(id) => Route::Session(id.clone()),
            None => Route::UnknownAddr,
        }
    }
}

/// RFC 5389 §6: two zero bits, the magic cookie, a length that is a multiple of 4 and fits.
pub fn is_stun(b: &[u8]) -> bool {
    b.len() >= 20 && b[0] & 0xc0 == 0 && u32::from_be_bytes([b[4], b[5], b[6], b[7]]) == STUN_MAGIC_COOKIE && {
        let len = u16::from_be_bytes([b[2], b[3]]) as usize;
        len.is_multiple_of(4) && 20 + len <= b.len()
    }
}

/// The local part of a binding request's USERNAME (`<local>:<remote>`).
pub fn stun_local_ufrag(b: &[u8]) -> Option<&str> {
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    let body = b.get(20..20 + len)?;
    let mut pos = 0;
    while pos + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[pos], body[pos + 1]]);
        let alen = u16::from_be_bytes([body[pos + 2], body[pos + 3]]) as usize;
        let value = body.get(pos + 4..pos + 4 + alen)?;
        if typ == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let (local, _) = username.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        pos += 4 + alen.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn binding_request(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&STUN_MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn routes_by_ufrag_then_by_address() {
        let mut mux = UdpMux::default();
        mux.add("srv1".into(), 1u32);
        mux.add("srv2".into(), 2u32);
        assert_eq!(mux.route(&[0x16, 0xfe, 0xfd, 0, 0], addr(5000)), Route::UnknownAddr);
        assert_eq!(mux.route(&binding_request("srv2:peer"), addr(5000)), Route::Session(2));
        assert_eq!(mux.route(&[0x16, 0xfe, 0xfd, 0, 0], addr(5000)), Route::Session(2));
        assert_eq!(mux.route(&binding_request("nope:peer"), addr(5001)), Route::UnknownUfrag);
        assert_eq!(mux.route(&binding_request("srv1:peer"), addr(5001)), Route::Session(1));
        mux.remove(&2);
        assert_eq!(mux.route(&[0x80, 0x60, 0, 1], addr(5000)), Route::UnknownAddr);
        assert_eq!(mux.route(&[0x80, 0x60, 0, 1], addr(5001)), Route::Session(1));
        assert_eq!(mux.len(), 1);
    }

    #[test]
    fn bounded_addresses_and_garbage() {
        let mut mux = UdpMux::default();
        mux.add("u".into(), 1u32);
        for p in 0..100 {
            mux.route(&binding_request("u:x"), addr(6000 + p));
        }
        assert_eq!(mux.by_addr.len(), MAX_ADDRS_PER_SESSION);
        let mut truncated = binding_request("u:x");
        truncated.truncate(22);
        assert_eq!(mux.route(&truncated, addr(1)), Route::UnknownAddr);
        let mut long_attr = binding_request("u:x");
        long_attr[22] = 0xff; // attribute length past the end
        assert_eq!(mux.route(&long_attr, addr(1)), Route::NoUsername);
        assert_eq!(mux.route(&binding_request("nocolon"), addr(1)), Route::NoUsername);
    }
}
