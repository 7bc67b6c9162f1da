//! Instruction-set levels and CPU feature detection.

/// An instruction-set level the kernels can be chosen for. A level allows
/// kernels of itself and of the lower levels of its family: x86_64
/// `Scalar < Avx2 < AvxVnni < Avx512Vnni`, aarch64 `Scalar < Neon < Dotprod`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// The best level this CPU supports.
    Auto,
    /// The scalar specification kernels only.
    Scalar,
    /// x86_64 AVX2 (int8 products widened to i16, `vpmaddwd`).
    Avx2,
    /// x86_64 AVX-VNNI (`vpdpbusd` on ymm).
    AvxVnni,
    /// x86_64 AVX-512 F/BW/VL with VNNI (`vpdpbusd` on zmm).
    Avx512Vnni,
    /// aarch64 Advanced SIMD (`smull`, `sadalp`).
    Neon,
    /// aarch64 with the dot-product extension (`sdot`).
    Dotprod,
}

impl Isa {
    /// Every concrete level, lowest first within each family.
    pub const ALL: [Isa; 6] = [Isa::Scalar, Isa::Avx2, Isa::AvxVnni, Isa::Avx512Vnni, Isa::Neon, Isa::Dotprod];

    /// The name `KILN_ISA` and the CLI use.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Auto => "auto",
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avxvnni",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Neon => "neon",
            Isa::Dotprod => "dotprod",
        }
    }

    /// Parses a [`Isa::name`].
    pub fn parse(name: &str) -> Option<Isa> {
        [Isa::Auto].into_iter().chain(Isa::ALL).find(|isa| isa.name() == name)
    }

    /// Whether this CPU (with `std`: detected at run time; without: the
    /// features the crate was compiled for) can run kernels of this level.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Auto | Isa::Scalar => true,
            Isa::Avx2 => x86::avx2(),
            Isa::AvxVnni => x86::avx2() && x86::avxvnni(),
            Isa::Avx512Vnni => x86::avx2() && x86::avx512vnni(),
            Isa::Neon => arm::neon(),
            Isa::Dotprod => arm::neon() && arm::dotprod(),
        }
    }

    /// The highest supported level.
    pub fn best() -> Isa {
        Isa::ALL.into_iter().rev().find(|isa| isa.is_supported()).unwrap_or(Isa::Scalar)
    }

    /// `(family, rank)`: family 0 is everyone's (scalar), 1 x86_64, 2 aarch64.
    fn rank(self) -> (u8, u8) {
        match self {
            Isa::Auto | Isa::Scalar => (0, 0),
            Isa::Avx2 => (1, 1),
            Isa::AvxVnni => (1, 2),
            Isa::Avx512Vnni => (1, 3),
            Isa::Neon => (2, 1),
            Isa::Dotprod => (2, 2),
        }
    }

    /// Whether a session at level `self` may use a kernel of level `kernel`.
    pub fn allows(self, kernel: Isa) -> bool {
        let (family, rank) = self.rank();
        let (kernel_family, kernel_rank) = kernel.rank();
        kernel_family == 0 || (kernel_family == family && kernel_rank <= rank)
    }
}

impl core::fmt::Display for Isa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    #[cfg(feature = "std")]
    macro_rules! has {
        ($($f:tt),+) => { $(std::is_x86_feature_detected!($f))&&+ };
    }
    #[cfg(not(feature = "std"))]
    macro_rules! has {
        ($($f:tt),+) => { $(cfg!(target_feature = $f))&&+ };
    }
    pub fn avx2() -> bool {
        // F16C widens float layers' f16 weights; every AVX2 CPU has it.
        has!("avx2", "f16c")
    }
    pub fn avxvnni() -> bool {
        has!("avxvnni")
    }
    pub fn avx512vnni() -> bool {
        has!("avx512f", "avx512bw", "avx512vl", "avx512vnni")
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    pub fn avx2() -> bool {
        false
    }
    pub fn avxvnni() -> bool {
        false
    }
    pub fn avx512vnni() -> bool {
        false
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    #[cfg(feature = "std")]
    macro_rules! has {
        ($f:tt) => {
            std::arch::is_aarch64_feature_detected!($f)
        };
    }
    #[cfg(not(feature = "std"))]
    macro_rules! has {
        ($f:tt) => {
            cfg!(target_feature = $f)
        };
    }
    pub fn neon() -> bool {
        has!("neon")
    }
    pub fn dotprod() -> bool {
        has!("dotprod")
    }
}

#[cfg(not(target_arch = "aarch64"))]
mod arm {
    pub fn neon() -> bool {
        false
    }
    pub fn dotprod() -> bool {
        false
    }
}
