//! Supplier-code translation: the tables that turn each supplier's room, board and status
//! codes into bookhub's own and back. Empty until the supplier adapters need it: no adapter
//! ever hard-codes a translation, so this crate is where they will come from.
