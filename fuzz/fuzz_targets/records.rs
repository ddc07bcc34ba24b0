//! Completion-record and descriptor decoding: any 64 bytes are a record (status, error
//! code, sizes, fault address) that decodes, re-encodes to the same fields, and turns into
//! a typed error without panicking; any 64 bytes are a descriptor whose fields read back
//! and whose bytes survive the round trip.
#![no_main]

use accel::raw::completion::{Completion, COMPLETION_SIZE};
use accel::raw::descriptor::{Descriptor, DESCRIPTOR_SIZE};
use accel::{Op, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((rec, rest)) = data.split_first_chunk::<COMPLETION_SIZE>() else {
        return;
    };
    let c = Completion::from_bytes(rec);
    assert_eq!(Completion::from_bytes(&c.to_bytes()), c);
    let status = c.status();
    assert_eq!(status, Status::from_byte(c.status_byte));
    if status != Status::Success {
        for op in [Op::Compress, Op::Decompress, Op::Verify] {
            let e = accel::emu::completion_error(op, &c);
            // Display and the fallback classification must not panic either.
            let _ = e.to_string();
        }
    }
    if let Some((d, _)) = rest.split_first_chunk::<DESCRIPTOR_SIZE>() {
        let desc = Descriptor::from_bytes(d);
        assert_eq!(desc.as_bytes(), d);
        let _ = (
            desc.opcode(),
            desc.flags(),
            desc.privileged(),
            desc.pasid(),
            desc.completion_addr(),
            desc.src1_addr(),
            desc.src1_size(),
            desc.dst_addr(),
            desc.max_dst_size(),
            desc.op_flags(),
            desc.src2_addr(),
            desc.src2_size(),
            desc.int_handle(),
            desc.filter_flags(),
            desc.num_inputs(),
        );
    }
});
