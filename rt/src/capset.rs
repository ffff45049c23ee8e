//! CapSet lookup: finding a bootstrap capability by name and checking that it
//! exposes the interface the caller expects.
//!
//! The kernel maps the CapSet page read-only at `CAPSET_ADDR`; `_start`
//! parses it with `capos_ring::process::CapSet` and keeps a copy of the
//! entries. Lookups here are plain functions over that copy so they can be
//! tested on the host.

use alloc::string::{String, ToString};
use capos_caps::interfaces;
use capos_ring::process::CapSetEntry;
use core::fmt;

use crate::handle::Cap;

/// A typed client for one capability interface.
///
/// Implemented by [`crate::Console`], [`crate::BootPackage`] and
/// [`crate::NullCap`]; a new typed client implements it so that
/// [`crate::Runtime::cap`] can hand it out after checking the interface id.
pub trait Interface: Sized {
    /// The Cap'n Proto interface id a capability must expose.
    const INTERFACE_ID: u64;
    /// The schema name, for messages.
    const NAME: &'static str;
    /// Wraps a capability already known to expose [`Interface::INTERFACE_ID`].
    fn from_cap(cap: Cap) -> Self;
    /// The underlying capability.
    fn cap(&self) -> &Cap;
}

/// Why a CapSet lookup failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapLookupError {
    /// No entry has this name.
    Missing {
        /// The name looked up.
        name: String,
    },
    /// The entry exists but exposes a different interface.
    WrongInterface {
        /// The name looked up.
        name: String,
        /// The interface id the caller asked for.
        expected: u64,
        /// The interface id in the CapSet entry.
        found: u64,
    },
}

/// `Console (0x...)` for a kernel interface, `0x...` for any other id.
struct InterfaceName(u64);

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match interfaces::name_of(self.0) {
            Some(name) => write!(f, "{name} ({:#018x})", self.0),
            None => write!(f, "{:#018x}", self.0),
        }
    }
}

impl fmt::Display for CapLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapLookupError::Missing { name } => {
                write!(f, "no capability named \"{name}\" in the CapSet")
            }
            CapLookupError::WrongInterface {
                name,
                expected,
                found,
            } => write!(
                f,
                "capability \"{name}\" exposes interface {}, expected {}",
                InterfaceName(*found),
                InterfaceName(*expected)
            ),
        }
    }
}

/// The entry named `name`, checked against `expected` when given.
///
/// Entries whose name bytes are invalid never match. If several entries carry
/// the same name (the kernel does not build such CapSets) the first wins.
pub fn find(
    entries: &[CapSetEntry],
    name: &str,
    expected: Option<u64>,
) -> Result<CapSetEntry, CapLookupError> {
    let entry = entries
        .iter()
        .find(|e| e.name() == Some(name))
        .ok_or_else(|| CapLookupError::Missing {
            name: name.to_string(),
        })?;
    match expected {
        Some(want) if want != entry.interface_id => Err(CapLookupError::WrongInterface {
            name: name.to_string(),
            expected: want,
            found: entry.interface_id,
        }),
        _ => Ok(*entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capos_ring::process::{encode_capset, CapSet};

    fn sample() -> Vec<CapSetEntry> {
        vec![
            CapSetEntry::new("console", 0x0100_0001, interfaces::CONSOLE).unwrap(),
            CapSetEntry::new("boot", 0x0100_0002, interfaces::BOOT_PACKAGE).unwrap(),
            CapSetEntry::new("custom", 0x0100_0003, 0x1234).unwrap(),
        ]
    }

    #[test]
    fn finds_by_name_and_checks_interface() {
        let caps = sample();
        let e = find(&caps, "console", Some(interfaces::CONSOLE)).unwrap();
        assert_eq!(e.cap_id, 0x0100_0001);
        assert_eq!(find(&caps, "custom", None).unwrap().interface_id, 0x1234);
    }

    #[test]
    fn missing_name() {
        let err = find(&sample(), "timer", Some(interfaces::TIMER)).unwrap_err();
        assert_eq!(
            err,
            CapLookupError::Missing {
                name: "timer".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "no capability named \"timer\" in the CapSet"
        );
    }

    #[test]
    fn wrong_interface_names_both_ids() {
        let err = find(&sample(), "boot", Some(interfaces::CONSOLE)).unwrap_err();
        assert_eq!(
            err,
            CapLookupError::WrongInterface {
                name: "boot".into(),
                expected: interfaces::CONSOLE,
                found: interfaces::BOOT_PACKAGE,
            }
        );
        assert_eq!(
            err.to_string(),
            "capability \"boot\" exposes interface BootPackage (0xf2b53ebe0df4188d), \
             expected Console (0xdfa84506728bf29c)"
        );
        let err = find(&sample(), "custom", Some(interfaces::CONSOLE)).unwrap_err();
        assert!(err.to_string().contains("interface 0x0000000000001234,"));
    }

    #[test]
    fn names_must_match_exactly() {
        let caps = sample();
        assert!(find(&caps, "consol", None).is_err());
        assert!(find(&caps, "console2", None).is_err());
        assert!(find(&caps, "", None).is_err());
        let mut bad = caps[0];
        bad.name_len = 200;
        assert!(find(&[bad], "console", None).is_err());
    }

    #[test]
    fn first_duplicate_wins() {
        let caps = [
            CapSetEntry::new("x", 1, 10).unwrap(),
            CapSetEntry::new("x", 2, 20).unwrap(),
        ];
        assert_eq!(find(&caps, "x", None).unwrap().cap_id, 1);
        assert!(find(&caps, "x", Some(20)).is_err());
    }

    #[test]
    fn lookup_over_a_parsed_page() {
        let mut page = [0u8; 4096];
        encode_capset(&sample(), &mut page).unwrap();
        let parsed: Vec<_> = CapSet::parse(&page).unwrap().iter().collect();
        assert_eq!(
            find(&parsed, "boot", Some(interfaces::BOOT_PACKAGE))
                .unwrap()
                .cap_id,
            0x0100_0002
        );
    }
}
