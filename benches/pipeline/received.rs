//! What the loopback InfluxDB stand-in received: the tests' HTTP server in its counting mode
//! (answers 204, never decompresses, so it costs little next to the client), read as bytes and
//! requests between two moments.

use crate::fault_server::FaultServer;

#[derive(Clone, Copy)]
pub struct Received {
    pub bytes: u64,
    pub requests: u64,
}

impl Received {
    /// Everything `server` has received so far (body bytes as sent, before gunzip).
    pub fn by(server: &FaultServer) -> Received {
        let requests = server.requests();
        Received {
            bytes: requests.iter().map(|r| r.wire_len as u64).sum(),
            requests: requests.len() as u64,
        }
    }

    pub fn since(&self, before: &Received) -> Received {
        Received {
            bytes: self.bytes - before.bytes,
            requests: self.requests - before.requests,
        }
    }
}
