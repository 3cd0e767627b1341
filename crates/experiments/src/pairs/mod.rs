//! Making counterfactual pairs as SafetyPairs does: take an image, ask an
//! image editor to add or remove only the safety-relevant feature a policy
//! names, keep the edit only if the rest of the image is unchanged and the
//! label really flipped, and record the two images as a pair.

pub mod builtin;
pub mod command;
pub mod editor;
pub mod generate;
pub mod http;
pub mod verify;

pub use editor::{EditRequest, Edited, Editor, EditorConfig};
pub use generate::{GenerateConfig, GenerateOptions, GenerateReport, Inputs, Record, Status, generate};
pub use verify::{Verdict, Verifier, VerifyConfig};
