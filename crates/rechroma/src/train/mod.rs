//! Training: losses (and, next, the loops, checkpoints and validation).

pub mod loss;
