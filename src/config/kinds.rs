//! The sensor kinds fieldlink knows, one table per bus. A row names the kind as the board file
//! spells it and, for I2C, the chip's addresses and what `scan` calls it. The enum and its table
//! are declared together, so a new kind is one row here; the compiler then points at every
//! `match` that must handle it.

/// Declares a bus's kind enum from its table: `Variant => row,` per kind. Generates `ALL` (in
/// table order), `row()`, `name()` and `from_name()`.
macro_rules! kind_table {
    ($(#[$doc:meta])* $kind:ident: $row:ident { $($variant:ident => $value:expr,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $kind {
            $($variant,)+
        }

        impl $kind {
            /// Every kind of this bus, in table order.
            pub const ALL: &'static [$kind] = &[$($kind::$variant,)+];

            /// This kind's row of the table.
            pub fn row(self) -> $row {
                match self {
                    $($kind::$variant => $value,)+
                }
            }

            /// The name the board file uses (`kind = "..."`).
            pub fn name(self) -> &'static str {
                self.row().name
            }

            /// The kind a board file's `kind = "..."` names, if it is one of this bus.
            pub fn from_name(name: &str) -> Option<$kind> {
                Self::ALL.iter().copied().find(|kind| kind.name() == name)
            }
        }
    };
}

/// A row for buses where a kind needs nothing but its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindRow {
    pub name: &'static str,
}

/// A row of the I2C chip table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct I2cChipRow {
    pub name: &'static str,
    /// Addresses the chip can be strapped to; the first is its default.
    pub addresses: &'static [u8],
    /// What `fieldlink scan` calls a device answering at one of `addresses`.
    pub scan_name: &'static str,
}

kind_table! {
    /// Simulated sensors: plausible, seedable data without hardware.
    SimulatedKind: KindRow {
        Climate => KindRow { name: "simulated_climate" },
        Motion => KindRow { name: "simulated_motion" },
        Door => KindRow { name: "simulated_door" },
    }
}

kind_table! {
    /// I2C climate chips, each with a driver in `sensors::i2c`.
    I2cChip: I2cChipRow {
        Sht3x => I2cChipRow { name: "sht3x", addresses: &[0x44, 0x45], scan_name: "SHT3x" },
        Shtc3 => I2cChipRow { name: "shtc3", addresses: &[0x70], scan_name: "SHTC3" },
        Bme280 => I2cChipRow { name: "bme280", addresses: &[0x76, 0x77], scan_name: "BME280/BMP280" },
        Aht20 => I2cChipRow { name: "aht20", addresses: &[0x38], scan_name: "AHT20" },
        Aht10 => I2cChipRow { name: "aht10", addresses: &[0x38, 0x39], scan_name: "AHT10" },
        Htu21d => I2cChipRow { name: "htu21d", addresses: &[0x40], scan_name: "HTU21D/Si7021" },
    }
}

impl I2cChip {
    /// The address the chip answers on when the board file names none.
    pub fn default_address(self) -> u8 {
        self.row().addresses[0]
    }
}

kind_table! {
    /// Sensors the kernel already drives, read through sysfs files.
    SysfsKind: KindRow {
        Ds18b20 => KindRow { name: "ds18b20" },
        Dht22 => KindRow { name: "dht22" },
        SocTemp => KindRow { name: "soc_temp" },
    }
}

kind_table! {
    /// Edge sensors on a GPIO input line.
    GpioKind: KindRow {
        Pir => KindRow { name: "pir" },
        ReedSwitch => KindRow { name: "reed_switch" },
    }
}

/// Every kind name of every bus, in table order: what an unknown `kind` is told to pick from.
pub fn all_names() -> Vec<&'static str> {
    let simulated = SimulatedKind::ALL.iter().map(|k| k.name());
    let i2c = I2cChip::ALL.iter().map(|k| k.name());
    let sysfs = SysfsKind::ALL.iter().map(|k| k.name());
    let gpio = GpioKind::ALL.iter().map(|k| k.name());
    simulated.chain(i2c).chain(sysfs).chain(gpio).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_name_is_used_once() {
        let mut names = all_names();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert_eq!(count, 14);
    }

    #[test]
    fn every_i2c_chip_has_a_default_address_within_the_scanned_range() {
        for chip in I2cChip::ALL {
            assert!((0x08..=0x77).contains(&chip.default_address()), "{chip:?}");
        }
        assert_eq!(I2cChip::Aht10.default_address(), 0x38);
    }
}
