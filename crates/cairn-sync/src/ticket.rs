//! Invitation tickets: the inviter's endpoint id, its direct addresses and a one-time secret,
//! as one copy-pasteable string (`cairn1` + hex). The inviter keeps only the secret's hash.

use std::net::SocketAddr;

use crate::Error;

const PREFIX: &str = "cairn1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The inviter's endpoint id (32 bytes).
    pub inviter: [u8; 32],
    pub addrs: Vec<SocketAddr>,
    pub secret: [u8; 32],
}

impl Ticket {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&self.inviter);
        bytes.extend_from_slice(&self.secret);
        for a in &self.addrs {
            let s = a.to_string();
            bytes.push(s.len() as u8);
            bytes.extend_from_slice(s.as_bytes());
        }
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{PREFIX}{hex}")
    }

    pub fn decode(text: &str) -> Result<Ticket, Error> {
        let bad = |why: &str| Error::BadTicket(why.to_owned());
        let hex = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad("it does not start with 'cairn1'"))?;
        if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
            return Err(bad("it is not hex"));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad("it is not hex"))?;
        if bytes.len() < 64 {
            return Err(bad("it is too short"));
        }
        let mut inviter = [0u8; 32];
        inviter.copy_from_slice(&bytes[..32]);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&bytes[32..64]);
        let mut rest = &bytes[64..];
        let mut addrs = Vec::new();
        while let Some((&n, tail)) = rest.split_first() {
            let n = n as usize;
            if tail.len() < n {
                return Err(bad("an address is cut short"));
            }
            let s = std::str::from_utf8(&tail[..n]).map_err(|_| bad("an address is not text"))?;
            addrs.push(s.parse().map_err(|_| bad("an address does not parse"))?);
            rest = &tail[n..];
        }
        Ok(Ticket {
            inviter,
            addrs,
            secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_round_trip_and_reject_junk() {
        let t = Ticket {
            inviter: [7; 32],
            addrs: vec![
                "127.0.0.1:4000".parse().unwrap(),
                "[::1]:5".parse().unwrap(),
            ],
            secret: [9; 32],
        };
        assert_eq!(Ticket::decode(&t.encode()).unwrap(), t);
        assert!(Ticket::decode("cairn1zz").is_err());
        assert!(Ticket::decode("hello").is_err());
        let mut cut = t.encode();
        cut.truncate(cut.len() - 4);
        assert!(Ticket::decode(&cut).is_err());
    }
}
