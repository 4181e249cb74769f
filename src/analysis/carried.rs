//! The codec a call was carried in before it was recorded, and what it costs a listener.
//!
//! A PBX records what it decoded: a call that crossed a G.729 trunk or a GSM network carries
//! that codec's distortion in every sample, and nothing in the recording tells its spectrum
//! from a clean voice's (a parametric codec keeps a voice's spectral valleys; its damage is in
//! the fine structure, which a no-reference measure does not see). The PBX knows the codec
//! (FreeSWITCH's `read_codec`, Asterisk's `CHANNEL(audionativeformat)`), and network planning
//! has a number for it: the E-model's equipment impairment factor `Ie` (ITU-T G.107), whose
//! planning values ITU-T G.113 Appendix I lists per codec. The score is an E-model rating, so a
//! codec's `Ie` is what it takes off.
//!
//! Names are taken as PBXs and SDP write them (`PCMU`, `G729/8000`, `g.729a`, `gsm`): lower
//! case, dots left out, a clock rate after `/` dropped. A name with no planning value here
//! (Opus, iLBC, AMR without its mode, G.722) is kept and reported, and costs nothing: G.113
//! gives no narrowband value for it, and a guessed one would be a number nobody can check.

use serde::{Deserialize, Serialize};

/// A codec's name, normalised (see the module docs): 1 to 32 of `a-z`, `0-9`, `-`, `_`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Codec(String);

/// One codec of G.113 Appendix I (Table I.1, provisional planning values): the names it goes
/// by, what to call it, and its `Ie`.
struct Planned {
    names: &'static [&'static str],
    label: &'static str,
    ie: f64,
}

const PLANNED: &[Planned] = &[
    Planned {
        names: &[
            "g711", "g711u", "g711a", "pcmu", "pcma", "ulaw", "alaw", "mulaw",
        ],
        label: "G.711",
        ie: 0.0,
    },
    Planned {
        names: &["g726-40"],
        label: "G.726 at 40 kbit/s",
        ie: 2.0,
    },
    Planned {
        names: &["g726", "g726-32", "aal2-g726-32", "g721"],
        label: "G.726 at 32 kbit/s",
        ie: 7.0,
    },
    Planned {
        names: &["g726-24"],
        label: "G.726 at 24 kbit/s",
        ie: 25.0,
    },
    Planned {
        names: &["g726-16"],
        label: "G.726 at 16 kbit/s",
        ie: 50.0,
    },
    Planned {
        names: &["g728"],
        label: "G.728 at 16 kbit/s",
        ie: 7.0,
    },
    Planned {
        names: &["g729"],
        label: "G.729",
        ie: 10.0,
    },
    Planned {
        names: &["g729a", "g729ab", "g729b"],
        label: "G.729 Annex A (with VAD)",
        ie: 11.0,
    },
    Planned {
        names: &["g723", "g7231", "g723-63"],
        label: "G.723.1 at 6.3 kbit/s",
        ie: 15.0,
    },
    Planned {
        names: &["g723-53", "g7231-53"],
        label: "G.723.1 at 5.3 kbit/s",
        ie: 19.0,
    },
    Planned {
        names: &["gsm", "gsm-fr", "gsm610"],
        label: "GSM full rate",
        ie: 20.0,
    },
    Planned {
        names: &["gsm-hr"],
        label: "GSM half rate",
        ie: 23.0,
    },
    Planned {
        names: &["gsm-efr", "amr-122"],
        label: "GSM enhanced full rate",
        ie: 5.0,
    },
];

impl Codec {
    pub fn parse(name: &str) -> Result<Codec, String> {
        let kept: String = name
            .trim()
            .split('/')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|&c| c != '.')
            .flat_map(char::to_lowercase)
            .collect();
        let valid = (1..=32).contains(&kept.len())
            && kept
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if valid {
            Ok(Codec(kept))
        } else {
            Err(format!(
                "codec {name:?}: a codec's name is 1 to 32 letters, digits, -, _ or . \
                 (as `G729`, `PCMU/8000`, `gsm`)"
            ))
        }
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    fn planned(&self) -> Option<&'static Planned> {
        PLANNED.iter().find(|p| p.names.contains(&self.0.as_str()))
    }

    /// Its equipment impairment factor (G.113 Appendix I), when G.113 gives one.
    pub fn ie(&self) -> Option<f64> {
        self.planned().map(|p| p.ie)
    }

    /// What to call it in a message: the standard's name when known, else the name given.
    pub fn label(&self) -> &str {
        self.planned().map_or(&self.0, |p| p.label)
    }
}

impl TryFrom<String> for Codec {
    type Error = String;
    fn try_from(s: String) -> Result<Codec, String> {
        Codec::parse(&s)
    }
}

impl From<Codec> for String {
    fn from(c: Codec) -> String {
        c.0
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_taken_as_pbxs_and_sdp_write_them() {
        for (given, kept, ie) in [
            ("PCMU", "pcmu", Some(0.0)),
            ("G729/8000", "g729", Some(10.0)),
            ("g.729a", "g729a", Some(11.0)),
            (" GSM ", "gsm", Some(20.0)),
            ("G723.1", "g7231", Some(15.0)),
            ("G726-32", "g726-32", Some(7.0)),
            ("opus/48000/2", "opus", None),
            ("iLBC", "ilbc", None),
        ] {
            let c = Codec::parse(given).unwrap();
            assert_eq!((c.name(), c.ie()), (kept, ie), "{given}");
        }
        assert_eq!(Codec::parse("gsm").unwrap().label(), "GSM full rate");
        assert_eq!(Codec::parse("opus").unwrap().label(), "opus");
    }

    #[test]
    fn a_name_that_is_not_one_is_refused() {
        for bad in [
            "",
            "/8000",
            "g729 annex a",
            "g729;rm -rf",
            &"x".repeat(33),
            "é",
        ] {
            assert!(Codec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_name_is_planned_once_and_normalised() {
        let mut seen = std::collections::HashSet::new();
        for p in PLANNED {
            for &n in p.names {
                assert!(seen.insert(n), "{n} twice");
                assert_eq!(Codec::parse(n).unwrap().name(), n);
            }
        }
    }
}
