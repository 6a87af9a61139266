//! Completion status: the Status Field of a completion queue entry (NVMe
//! Base Specification 1.4, section 4.6.1) decoded into its type, code and
//! the name the specification gives it.

use std::fmt;

/// A non-success completion status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    /// Status Code Type (0 generic, 1 command specific, 2 media and data
    /// integrity, 3 path related, 7 vendor specific).
    pub sct: u8,
    /// Status Code.
    pub sc: u8,
    /// Do Not Retry: the same command would fail again.
    pub dnr: bool,
    /// More: the Error Information log page has details.
    pub more: bool,
}

impl Status {
    /// Decodes the upper half of completion dword 3 (`dw3 >> 17` is the
    /// status without the phase bit); `None` for a successful completion.
    ///
    /// ```
    /// use pinio_nvme::Status;
    /// let dw3 = (0x80u32 << 17) | (1 << 16) | 7; // LBA Out of Range, phase 1, cid 7
    /// let s = Status::from_dw3(dw3).unwrap();
    /// assert_eq!((s.sct, s.sc, s.name()), (0, 0x80, "LBA Out of Range"));
    /// assert!(Status::from_dw3((1 << 16) | 7).is_none());
    /// ```
    pub fn from_dw3(dw3: u32) -> Option<Status> {
        let sf = dw3 >> 17;
        let (sc, sct) = ((sf & 0xff) as u8, (sf >> 8 & 0x7) as u8);
        if sc == 0 && sct == 0 {
            return None;
        }
        Some(Status { sct, sc, dnr: sf >> 14 & 1 == 1, more: sf >> 13 & 1 == 1 })
    }

    /// The status's name as the specification spells it.
    pub fn name(&self) -> &'static str {
        name(self.sct, self.sc)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (status code type {:#x}, status code {:#04x}", self.name(), self.sct, self.sc)?;
        if self.dnr {
            f.write_str(", do not retry")?;
        }
        f.write_str(")")
    }
}

/// The name of status `(sct, sc)`.
pub fn name(sct: u8, sc: u8) -> &'static str {
    match (sct, sc) {
        (0, 0x00) => "Successful Completion",
        (0, 0x01) => "Invalid Command Opcode",
        (0, 0x02) => "Invalid Field in Command",
        (0, 0x03) => "Command ID Conflict",
        (0, 0x04) => "Data Transfer Error",
        (0, 0x05) => "Commands Aborted due to Power Loss Notification",
        (0, 0x06) => "Internal Error",
        (0, 0x07) => "Command Abort Requested",
        (0, 0x08) => "Command Aborted due to SQ Deletion",
        (0, 0x09) => "Command Aborted due to Failed Fused Command",
        (0, 0x0a) => "Command Aborted due to Missing Fused Command",
        (0, 0x0b) => "Invalid Namespace or Format",
        (0, 0x0c) => "Command Sequence Error",
        (0, 0x0d) => "Invalid SGL Segment Descriptor",
        (0, 0x0e) => "Invalid Number of SGL Descriptors",
        (0, 0x0f) => "Data SGL Length Invalid",
        (0, 0x10) => "Metadata SGL Length Invalid",
        (0, 0x11) => "SGL Descriptor Type Invalid",
        (0, 0x12) => "Invalid Use of Controller Memory Buffer",
        (0, 0x13) => "PRP Offset Invalid",
        (0, 0x14) => "Atomic Write Unit Exceeded",
        (0, 0x15) => "Operation Denied",
        (0, 0x16) => "SGL Offset Invalid",
        (0, 0x18) => "Host Identifier Inconsistent Format",
        (0, 0x19) => "Keep Alive Timer Expired",
        (0, 0x1a) => "Keep Alive Timeout Invalid",
        (0, 0x1b) => "Command Aborted due to Preempt and Abort",
        (0, 0x1c) => "Sanitize Failed",
        (0, 0x1d) => "Sanitize In Progress",
        (0, 0x1e) => "SGL Data Block Granularity Invalid",
        (0, 0x1f) => "Command Not Supported for Queue in CMB",
        (0, 0x20) => "Namespace is Write Protected",
        (0, 0x21) => "Command Interrupted",
        (0, 0x22) => "Transient Transport Error",
        (0, 0x80) => "LBA Out of Range",
        (0, 0x81) => "Capacity Exceeded",
        (0, 0x82) => "Namespace Not Ready",
        (0, 0x83) => "Reservation Conflict",
        (0, 0x84) => "Format In Progress",
        (1, 0x00) => "Completion Queue Invalid",
        (1, 0x01) => "Invalid Queue Identifier",
        (1, 0x02) => "Invalid Queue Size",
        (1, 0x03) => "Abort Command Limit Exceeded",
        (1, 0x05) => "Asynchronous Event Request Limit Exceeded",
        (1, 0x06) => "Invalid Firmware Slot",
        (1, 0x07) => "Invalid Firmware Image",
        (1, 0x08) => "Invalid Interrupt Vector",
        (1, 0x09) => "Invalid Log Page",
        (1, 0x0a) => "Invalid Format",
        (1, 0x0b) => "Firmware Activation Requires Conventional Reset",
        (1, 0x0c) => "Invalid Queue Deletion",
        (1, 0x0d) => "Feature Identifier Not Saveable",
        (1, 0x0e) => "Feature Not Changeable",
        (1, 0x0f) => "Feature Not Namespace Specific",
        (1, 0x10) => "Firmware Activation Requires NVM Subsystem Reset",
        (1, 0x11) => "Firmware Activation Requires Controller Level Reset",
        (1, 0x12) => "Firmware Activation Requires Maximum Time Violation",
        (1, 0x13) => "Firmware Activation Prohibited",
        (1, 0x14) => "Overlapping Range",
        (1, 0x15) => "Namespace Insufficient Capacity",
        (1, 0x16) => "Namespace Identifier Unavailable",
        (1, 0x18) => "Namespace Already Attached",
        (1, 0x19) => "Namespace Is Private",
        (1, 0x1a) => "Namespace Not Attached",
        (1, 0x1b) => "Thin Provisioning Not Supported",
        (1, 0x1c) => "Controller List Invalid",
        (1, 0x80) => "Conflicting Attributes",
        (1, 0x81) => "Invalid Protection Information",
        (1, 0x82) => "Attempted Write to Read Only Range",
        (2, 0x80) => "Write Fault",
        (2, 0x81) => "Unrecovered Read Error",
        (2, 0x82) => "End-to-end Guard Check Error",
        (2, 0x83) => "End-to-end Application Tag Check Error",
        (2, 0x84) => "End-to-end Reference Tag Check Error",
        (2, 0x85) => "Compare Failure",
        (2, 0x86) => "Access Denied",
        (2, 0x87) => "Deallocated or Unwritten Logical Block",
        (3, 0x00) => "Internal Path Error",
        (3, 0x01) => "Asymmetric Access Persistent Loss",
        (3, 0x02) => "Asymmetric Access Inaccessible",
        (3, 0x03) => "Asymmetric Access Transition",
        (3, 0x60) => "Controller Pathing Error",
        (3, 0x70) => "Host Pathing Error",
        (3, 0x71) => "Command Aborted By Host",
        (7, _) => "Vendor Specific",
        _ => "Unknown Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dw3(sct: u32, sc: u32, dnr: bool, more: bool) -> u32 {
        ((dnr as u32) << 31 | (more as u32) << 30 | sct << 25 | sc << 17) | 1 << 16 | 0x1234
    }

    #[test]
    fn fields_come_from_their_bits() {
        let s = Status::from_dw3(dw3(0, 0x02, true, false)).unwrap();
        assert_eq!(s, Status { sct: 0, sc: 2, dnr: true, more: false });
        assert_eq!(s.name(), "Invalid Field in Command");
        let s = Status::from_dw3(dw3(1, 0x01, false, true)).unwrap();
        assert_eq!((s.sct, s.sc, s.dnr, s.more), (1, 1, false, true));
        assert_eq!(s.name(), "Invalid Queue Identifier");
        let s = Status::from_dw3(dw3(2, 0x81, false, false)).unwrap();
        assert_eq!(s.name(), "Unrecovered Read Error");
        // Command-retry delay bits (29:28) do not leak into the type.
        let s = Status::from_dw3(dw3(0, 0x80, false, false) | 3 << 28).unwrap();
        assert_eq!((s.sct, s.name()), (0, "LBA Out of Range"));
    }

    #[test]
    fn success_is_none_whatever_the_phase_and_cid() {
        for low in [0u32, 1 << 16, 0xffff, 0x1_ffff] {
            assert!(Status::from_dw3(low).is_none());
        }
        // A generic code 0 with another type is not success.
        assert_eq!(Status::from_dw3(dw3(1, 0, false, false)).unwrap().name(), "Completion Queue Invalid");
    }

    #[test]
    fn unknown_codes_have_a_name_too() {
        assert_eq!(name(0, 0x7f), "Unknown Status");
        assert_eq!(name(7, 0x42), "Vendor Specific");
        assert_eq!(name(5, 0), "Unknown Status");
    }

    #[test]
    fn display_carries_the_name_and_the_numbers() {
        let s = Status::from_dw3(dw3(0, 0x80, true, false)).unwrap().to_string();
        assert!(s.contains("LBA Out of Range") && s.contains("0x80") && s.contains("do not retry"), "{s}");
    }
}
