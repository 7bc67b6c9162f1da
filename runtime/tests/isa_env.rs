//! `KILN_ISA` forces a kernel level in `Session::new`. Its own test binary
//! (one process, one test): the variable is process-wide.

mod support;

use kiln_runtime::format::AlignedBytes;
use kiln_runtime::{Isa, Model, Session};

#[test]
fn kiln_isa_forces_a_level() {
    let file = AlignedBytes::copy_of(&support::small_net(3));
    let model = Model::from_bytes(&file).unwrap();
    // This binary holds one test: nothing else reads the environment meanwhile.
    std::env::set_var("KILN_ISA", "scalar");
    let session = Session::new(&model).unwrap();
    assert_eq!(session.kernels().isa(), Isa::Scalar);
    assert!(session.kernels().names().iter().all(|n| n.ends_with("__scalar")), "{:?}", session.kernels());

    std::env::set_var("KILN_ISA", "sse9");
    let err = Session::new(&model).err().expect("an unknown level is an error").to_string();
    assert!(err.contains("KILN_ISA=\"sse9\"") && err.contains("avx512vnni"), "{err}");

    std::env::remove_var("KILN_ISA");
    let session = Session::new(&model).unwrap();
    assert_eq!(session.kernels().isa(), Isa::best());
}
