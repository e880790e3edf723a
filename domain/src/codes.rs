//! bookhub's own codes. Agencies book in these; each supplier's codes are translated to and from
//! them through the mapping tables, never in code.

crate::code_enum! {
    /// Room type.
    pub enum RoomType ("room type") {
        Single = "SGL",
        Double = "DBL",
        Twin = "TWN",
        DoubleSuperior = "DBL_SUP",
        Triple = "TPL",
        Family = "FAM",
        JuniorSuite = "JSU",
    }
}

crate::code_enum! {
    /// Board (meal plan).
    pub enum Board ("board") {
        RoomOnly = "RO",
        BedAndBreakfast = "BB",
        HalfBoard = "HB",
        FullBoard = "FB",
        AllInclusive = "AI",
    }
}

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
