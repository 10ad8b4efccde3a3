//! `--max-connections-per-ip`: how many connections each client address
//! holds, in one shared map.
//!
//! A connection costs nothing here beyond its address's counter, and an
//! address is forgotten as soon as its last connection closes, so a flood
//! from many addresses leaves no trace once it stops.

use crate::forwarded::client_key;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

pub struct ConnectionsPerIp {
    limit: u32,
    counts: Mutex<HashMap<IpAddr, u32>>,
}

/// A count a request may take over from its connection or its proxy's
/// middleware: a WebSocket outlives the HTTP exchange that opened it, and
/// stays counted for as long as it is open.
#[derive(Clone)]
pub struct SlotHandoff(Arc<Mutex<Option<IpSlot>>>);

impl SlotHandoff {
    pub fn new(slot: IpSlot) -> SlotHandoff {
        SlotHandoff(Arc::new(Mutex::new(Some(slot))))
    }

    pub fn take(&self) -> Option<IpSlot> {
        self.0.lock().take()
    }
}

/// One counted connection; dropping it releases the count.
pub struct IpSlot {
    table: Arc<ConnectionsPerIp>,
    key: IpAddr,
}

impl ConnectionsPerIp {
    pub fn new(limit: u32) -> Arc<ConnectionsPerIp> {
        Arc::new(ConnectionsPerIp {
            limit,
            counts: Mutex::new(HashMap::new()),
        })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts a connection from `ip`, or `None` when its address already
    /// holds the limit.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = client_key(ip);
        let mut counts = self.counts.lock();
        let count = counts.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: self.clone(),
            key,
        })
    }

    /// Addresses holding at least one connection.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.counts.lock().len()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock();
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
                // Give back what a flood from many addresses grew.
                let (len, capacity) = (counts.len(), counts.capacity());
                if capacity > 1024 && len * 4 < capacity {
                    counts.shrink_to(len * 2);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_forgets_empty_ones() {
        let table = ConnectionsPerIp::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = table.acquire(a).unwrap();
        let second = table.acquire(a).unwrap();
        assert!(table.acquire(a).is_none());
        let other = table.acquire(b).unwrap();
        drop(first);
        let third = table.acquire(a).unwrap();
        drop((second, third, other));
        assert_eq!(table.addresses(), 0);
    }

    #[test]
    fn one_ipv6_host_is_one_client() {
        let table = ConnectionsPerIp::new(1);
        let _held = table.acquire("2001:db8::1".parse().unwrap()).unwrap();
        assert!(table.acquire("2001:db8::2".parse().unwrap()).is_none());
        assert!(table.acquire("2001:db8:0:1::1".parse().unwrap()).is_some());
    }
}
