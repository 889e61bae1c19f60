//! DIMSE C-STORE to a DICOM node, over dicom-rs's Upper Layer (`dicom-ul`).
//!
//! One association is kept open while consecutive instances share their SOP
//! class and transfer syntax (a series, usually), and renegotiated when they
//! change. The command set (PS3.7 9.3.1.1) is encoded by hand in Implicit VR
//! Little Endian, as PS3.7 requires; the data set travels in the transfer
//! syntax it was read in, which the node must accept.

use std::io::Write;
use std::time::Duration;

use dicom_ul::ClientAssociationOptions;
use dicom_ul::association::client::ClientAssociation;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextResultReason};

/// How long connecting, and each read or write, may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The C-STORE command field.
const C_STORE_RQ: u16 = 0x0001;
const C_STORE_RSP: u16 = 0x8001;

/// Checks an AE title: 1–16 characters of printable ASCII other than
/// backslash, not only spaces (PS3.5 6.2, VR AE).
pub fn check_ae_title(title: &str) -> Result<(), String> {
    if title.is_empty() || title.len() > 16 {
        return Err("an AE title has 1 to 16 characters".to_owned());
    }
    if !title
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
    {
        return Err("an AE title is printable ASCII without backslashes".to_owned());
    }
    if title.trim().is_empty() {
        return Err("an AE title may not be only spaces".to_owned());
    }
    Ok(())
}

/// A node and who calls it.
#[derive(Debug, Clone)]
pub struct Node {
    /// This server's AE title.
    pub calling_ae: String,
    /// The node's AE title.
    pub called_ae: String,
    /// `host:port`.
    pub address: String,
}

/// Consecutive C-STOREs to one node.
pub struct StoreSession {
    node: Node,
    open: Option<Open>,
    message_id: u16,
}

struct Open {
    sop_class: String,
    transfer_syntax: String,
    context_id: u8,
    association: ClientAssociation<std::net::TcpStream>,
}

impl StoreSession {
    /// A session that connects on its first store.
    pub fn new(node: Node) -> Self {
        Self {
            node,
            open: None,
            message_id: 0,
        }
    }

    /// Stores one instance: its data set (without the file meta group) in
    /// `transfer_syntax`. Blocking. Returns a warning for a warning status.
    pub fn store(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
        dataset: &[u8],
    ) -> Result<Option<String>, String> {
        let reuse = self.open.as_ref().is_some_and(|open| {
            open.sop_class == sop_class && open.transfer_syntax == transfer_syntax
        });
        if !reuse {
            self.close();
            self.open = Some(self.associate(sop_class, transfer_syntax)?);
        }
        self.message_id = self.message_id.wrapping_add(1).max(1);
        let message_id = self.message_id;
        let open = self.open.as_mut().expect("an association was just opened");
        let outcome = send_store(open, message_id, sop_class, sop_instance, dataset);
        if outcome.is_err() {
            // The association may be in any state after a failure: start over.
            if let Some(open) = self.open.take() {
                let _ = open.association.abort();
            }
        }
        outcome
    }

    /// Releases the association, if one is open.
    pub fn close(&mut self) {
        if let Some(open) = self.open.take() {
            let _ = open.association.release();
        }
    }

    fn associate(&self, sop_class: &str, transfer_syntax: &str) -> Result<Open, String> {
        let association = ClientAssociationOptions::new()
            .calling_ae_title(self.node.calling_ae.as_str())
            .called_ae_title(self.node.called_ae.as_str())
            .with_presentation_context(sop_class, vec![transfer_syntax])
            .connection_timeout(TIMEOUT)
            .read_timeout(TIMEOUT)
            .write_timeout(TIMEOUT)
            .establish(self.node.address.as_str())
            .map_err(|e| format!("the association with {} failed: {e}", self.node.called_ae))?;
        let accepted = association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.reason == PresentationContextResultReason::Acceptance)
            .map(|pc| (pc.id, pc.transfer_syntax.trim_end_matches('\0').to_owned()));
        match accepted {
            Some((context_id, syntax)) if syntax == transfer_syntax => Ok(Open {
                sop_class: sop_class.to_owned(),
                transfer_syntax: transfer_syntax.to_owned(),
                context_id,
                association,
            }),
            _ => {
                let _ = association.abort();
                Err(format!(
                    "the node does not accept SOP class {sop_class} in transfer syntax {transfer_syntax}; export with transfer_syntax 1.2.840.10008.1.2.1 (explicit little endian) if it takes that"
                ))
            }
        }
    }
}

impl Drop for StoreSession {
    fn drop(&mut self) {
        self.close();
    }
}

fn send_store(
    open: &mut Open,
    message_id: u16,
    sop_class: &str,
    sop_instance: &str,
    dataset: &[u8],
) -> Result<Option<String>, String> {
    let command = store_command(message_id, sop_class, sop_instance);
    open.association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: open.context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            }],
        })
        .map_err(|e| format!("sending the C-STORE command failed: {e}"))?;
    {
        let mut writer = open.association.send_pdata(open.context_id);
        writer
            .write_all(dataset)
            .and_then(|()| writer.finish())
            .map_err(|e| format!("sending the data set failed: {e}"))?;
    }
    let mut command = Vec::new();
    loop {
        match open
            .association
            .receive()
            .map_err(|e| format!("no C-STORE response: {e}"))?
        {
            Pdu::PData { data } => {
                let mut last = false;
                for value in data {
                    if value.value_type == PDataValueType::Command {
                        command.extend_from_slice(&value.data);
                        last |= value.is_last;
                    }
                }
                if last {
                    break;
                }
            }
            Pdu::AbortRQ { .. } => return Err("the node aborted the association".to_owned()),
            other => {
                return Err(format!(
                    "the node answered with an unexpected PDU ({})",
                    other.short_description()
                ));
            }
        }
    }
    let field = element_u16(&command, 0x0100);
    if field != Some(C_STORE_RSP) {
        return Err("the node's answer is not a C-STORE response".to_owned());
    }
    match element_u16(&command, 0x0900) {
        Some(0x0000) => Ok(None),
        Some(status @ (0xB000 | 0xB006 | 0xB007)) => Ok(Some(format!(
            "the node stored it with warning status 0x{status:04X}"
        ))),
        Some(status) => Err(format!(
            "the node refused it with status 0x{status:04X}{}",
            match status {
                0xA700..=0xA7FF => " (out of resources)",
                0xA900..=0xA9FF => " (data set does not match SOP class)",
                0xC000..=0xCFFF => " (cannot understand)",
                0x0122 => " (SOP class not supported)",
                0x0124 => " (not authorized)",
                _ => "",
            }
        )),
        None => Err("the node's C-STORE response has no status".to_owned()),
    }
}

/// A C-STORE-RQ command set in Implicit VR Little Endian, group length first.
fn store_command(message_id: u16, sop_class: &str, sop_instance: &str) -> Vec<u8> {
    let mut body = Vec::new();
    element(&mut body, 0x0002, &ui(sop_class));
    element(&mut body, 0x0100, &C_STORE_RQ.to_le_bytes());
    element(&mut body, 0x0110, &message_id.to_le_bytes());
    element(&mut body, 0x0700, &0u16.to_le_bytes());
    // Any value but 0x0101 says a data set follows.
    element(&mut body, 0x0800, &0u16.to_le_bytes());
    element(&mut body, 0x1000, &ui(sop_instance));
    let mut out = Vec::with_capacity(body.len() + 12);
    element(&mut out, 0x0000, &(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn ui(uid: &str) -> Vec<u8> {
    let mut value = uid.as_bytes().to_vec();
    if value.len() % 2 == 1 {
        value.push(0);
    }
    value
}

fn element(out: &mut Vec<u8>, element: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// The US value of command element (0000,`wanted`).
fn element_u16(command: &[u8], wanted: u16) -> Option<u16> {
    let mut at = 0;
    while at + 8 <= command.len() {
        let group = u16::from_le_bytes([command[at], command[at + 1]]);
        let element = u16::from_le_bytes([command[at + 2], command[at + 3]]);
        let length = u32::from_le_bytes(command[at + 4..at + 8].try_into().ok()?) as usize;
        let value = command.get(at + 8..at + 8 + length)?;
        if group == 0 && element == wanted && length == 2 {
            return Some(u16::from_le_bytes([value[0], value[1]]));
        }
        at += 8 + length;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_set_is_implicit_little_endian_with_its_group_length() {
        let command = store_command(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3");
        let group_length = u32::from_le_bytes(command[8..12].try_into().unwrap()) as usize;
        assert_eq!(group_length, command.len() - 12);
        assert_eq!(element_u16(&command, 0x0100), Some(C_STORE_RQ));
        assert_eq!(element_u16(&command, 0x0110), Some(7));
        // The odd-length UID is padded with a NUL to an even length.
        let tail = &command[command.len() - 6..];
        assert_eq!(tail, b"1.2.3\0");
    }

    #[test]
    fn ae_titles() {
        assert!(check_ae_title("ORTHANC").is_ok());
        assert!(check_ae_title("").is_err());
        assert!(check_ae_title("    ").is_err());
        assert!(check_ae_title("A\\B").is_err());
        assert!(check_ae_title("SEVENTEEN_CHARS_X").is_err());
    }
}
