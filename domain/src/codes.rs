//! bookhub's own codes. Agencies book in these; each supplier's codes are translated to and from
//! them through the mapping tables, never in code.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $code)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownCode;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok($name::$variant),)+
                    _ => Err(UnknownCode { kind: stringify!($name), allowed: Self::ALL.iter().map(|c| c.as_str()).collect() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A code that is not one of bookhub's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown code; expected one of {}", allowed.join(", "))]
pub struct UnknownCode {
    pub kind: &'static str,
    pub allowed: Vec<&'static str>,
}

code_enum!(
    /// Room type.
    RoomType {
        Single = "SGL",
        Double = "DBL",
        Twin = "TWN",
        DoubleSuperior = "DBL_SUP",
        Triple = "TPL",
        Family = "FAM",
        JuniorSuite = "JSU",
    }
);

code_enum!(
    /// Board (meal plan).
    Board {
        RoomOnly = "RO",
        BedAndBreakfast = "BB",
        HalfBoard = "HB",
        FullBoard = "FB",
        AllInclusive = "AI",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in RoomType::ALL {
            assert_eq!(code.as_str().parse::<RoomType>(), Ok(*code));
        }
        for code in Board::ALL {
            assert_eq!(code.as_str().parse::<Board>(), Ok(*code));
        }
        assert!("dbl".parse::<RoomType>().is_err());
    }
}
