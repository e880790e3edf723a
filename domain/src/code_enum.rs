//! One pattern for every closed set of codes that crosses an edge (API, database, config): an
//! enum whose variants each have one stable string. [`code_enum!`] writes `as_str`, `ALL`,
//! `FromStr`, `Display` and serde once, so a new code is one line.

/// A string that is not one of a code enum's codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {given:?}; expected one of {}", allowed.join(", "))]
pub struct UnknownCode {
    /// What was being parsed, in words (`booking status`).
    pub kind: &'static str,
    pub given: String,
    pub allowed: Vec<&'static str>,
}

/// Declares an enum of codes:
///
/// ```
/// bookhub_domain::code_enum! {
///     /// How a light is.
///     pub enum Light ("light") { On = "on", Off = "off" }
/// }
/// assert_eq!("on".parse::<Light>(), Ok(Light::On));
/// assert_eq!(Light::Off.to_string(), "off");
/// assert_eq!(Light::ALL.len(), 2);
/// ```
///
/// The string in parentheses names the enum in [`UnknownCode`]'s message. The using crate must
/// depend on `serde` (with `derive`).
#[macro_export]
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($words:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $code)] $variant),+
        }

        impl $name {
            /// Every code, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::code_enum::UnknownCode;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok($name::$variant),)+
                    _ => Err($crate::code_enum::UnknownCode {
                        kind: $words,
                        given: s.chars().take(64).collect(),
                        allowed: Self::ALL.iter().map(|c| c.as_str()).collect(),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::code_enum! {
        enum Sample ("sample") { One = "one", TwoWords = "two_words" }
    }

    #[test]
    fn codes_round_trip_through_str_display_and_serde() {
        for code in Sample::ALL {
            assert_eq!(code.as_str().parse::<Sample>(), Ok(*code));
            assert_eq!(code.to_string(), code.as_str());
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), *code);
        }
    }

    #[test]
    fn an_unknown_code_names_the_kind_and_the_allowed_codes() {
        let err = "three".parse::<Sample>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown sample "three"; expected one of one, two_words"#);
        assert!(serde_json::from_str::<Sample>("\"One\"").is_err(), "codes are case-sensitive");
    }
}
