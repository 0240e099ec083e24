//! XDM schema registry (see crate description).
