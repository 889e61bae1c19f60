//! Export jobs: instances read with GetDICOMInstance and written to a folder,
//! S3, a STOW-RS endpoint or a DICOM node, optionally de-identified.

pub mod destination;
pub mod dimse;

pub use destination::Destination;
