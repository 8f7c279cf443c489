//! Shared by the fuzz targets: a cursor that turns the fuzz input into the
//! values a target needs.

/// A cursor over the fuzz input; reads past the end give zeros.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether the input is used up.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, big-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next eight bytes, big-endian.
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A short string from the input (possibly not UTF-8, then lossy).
    pub fn string(&mut self) -> String {
        let len = usize::from(self.u8() % 16);
        String::from_utf8_lossy(self.take(len)).into_owned()
    }

    /// A protobuf `Reason` value; 18 and up are not Reasons, since unknown
    /// enum values must be tolerated.
    pub fn reason(&mut self) -> i32 {
        i32::from(self.u8() % 20)
    }
}
