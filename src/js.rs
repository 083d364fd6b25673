//! The few raw N-API operations napi-rs does not offer in the shape the
//! registry needs: calls that hand back a thrown value instead of rethrowing
//! it, weak references, promises settled from the JS thread, and property
//! definitions in one call. Everything here runs on the registry's JS thread.

use std::ffi::{c_void, CStr};
use std::ptr;

use napi::{sys, Env, Error, Result, Status};

/// A JavaScript value, valid until the current native call returns.
pub type Value = sys::napi_value;

/// The error to return after leaving a JavaScript exception pending; napi-rs
/// then lets that exception propagate unchanged.
pub fn pending() -> Error {
  Error::new(Status::PendingException, String::new())
}

/// Turns an N-API status into a `Result`. An exception the call raised stays
/// pending and propagates to the caller as it is.
pub fn check(status: sys::napi_status) -> Result<()> {
  match status {
    sys::Status::napi_ok => Ok(()),
    sys::Status::napi_pending_exception => Err(pending()),
    other => Err(Error::new(
      Status::from(other),
      "N-API call failed".to_owned(),
    )),
  }
}

/// Like [`check`], but hands back the thrown value (and clears it) instead of
/// leaving it pending, so the caller can decide what a throw means. Some calls
/// (a property read whose getter throws) report a generic failure rather than
/// `napi_pending_exception`, so a pending exception is looked for either way.
fn catching(
  env: sys::napi_env,
  status: sys::napi_status,
) -> Result<std::result::Result<(), Value>> {
  if status == sys::Status::napi_ok {
    return Ok(Ok(()));
  }
  let mut pending = status == sys::Status::napi_pending_exception;
  if !pending {
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
  }
  if pending {
    let mut thrown = ptr::null_mut();
    check(unsafe { sys::napi_get_and_clear_last_exception(env, &mut thrown) })?;
    return Ok(Err(thrown));
  }
  Err(Error::new(
    Status::from(status),
    "N-API call failed".to_owned(),
  ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
  Undefined,
  Null,
  Boolean,
  Number,
  String,
  Symbol,
  Object,
  Function,
  Other,
}

impl Type {
  /// The name `typeof` would give, for error messages.
  pub fn describe(self) -> &'static str {
    match self {
      Type::Undefined => "undefined",
      Type::Null => "null",
      Type::Boolean => "boolean",
      Type::Number => "number",
      Type::String => "string",
      Type::Symbol => "symbol",
      Type::Object => "object",
      Type::Function => "function",
      Type::Other => "bigint or external",
    }
  }
}

pub fn type_of(env: &Env, value: Value) -> Result<Type> {
  let mut kind = 0;
  check(unsafe { sys::napi_typeof(env.raw(), value, &mut kind) })?;
  Ok(match kind {
    sys::ValueType::napi_undefined => Type::Undefined,
    sys::ValueType::napi_null => Type::Null,
    sys::ValueType::napi_boolean => Type::Boolean,
    sys::ValueType::napi_number => Type::Number,
    sys::ValueType::napi_string => Type::String,
    sys::ValueType::napi_symbol => Type::Symbol,
    sys::ValueType::napi_object => Type::Object,
    sys::ValueType::napi_function => Type::Function,
    _ => Type::Other,
  })
}

/// Room for ids of typical length without touching the heap.
const INLINE_STR: usize = 128;

pub fn string(env: &Env, text: &str) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe {
    sys::napi_create_string_utf8(
      env.raw(),
      text.as_ptr().cast(),
      text.len() as isize,
      &mut value,
    )
  })?;
  Ok(value)
}

pub fn number(env: &Env, n: f64) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_create_double(env.raw(), n, &mut value) })?;
  Ok(value)
}

pub fn undefined(env: &Env) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_get_undefined(env.raw(), &mut value) })?;
  Ok(value)
}

pub fn global(env: &Env) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_get_global(env.raw(), &mut value) })?;
  Ok(value)
}

pub fn object(env: &Env) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_create_object(env.raw(), &mut value) })?;
  Ok(value)
}

pub fn array(env: &Env, len: usize) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_create_array_with_length(env.raw(), len, &mut value) })?;
  Ok(value)
}

pub fn get_element(env: &Env, array: Value, index: u32) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_get_element(env.raw(), array, index, &mut value) })?;
  Ok(value)
}

pub fn set_element(env: &Env, array: Value, index: u32, value: Value) -> Result<()> {
  check(unsafe { sys::napi_set_element(env.raw(), array, index, value) })
}

/// Reads a property. A getter that throws propagates its exception.
pub fn get(env: &Env, object: Value, name: &CStr) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_get_named_property(env.raw(), object, name.as_ptr(), &mut value) })?;
  Ok(value)
}

/// Defines own data properties (writable, enumerable, configurable) in one
/// call. Unlike assignment this never runs a setter, so a key such as
/// `__proto__` becomes an ordinary property.
pub fn define_data(env: &Env, object: Value, entries: &[(Value, Value)]) -> Result<()> {
  let descriptors: Vec<sys::napi_property_descriptor> = entries
    .iter()
    .map(|&(name, value)| sys::napi_property_descriptor {
      utf8name: ptr::null(),
      name,
      method: None,
      getter: None,
      setter: None,
      value,
      attributes: sys::PropertyAttributes::writable
        | sys::PropertyAttributes::enumerable
        | sys::PropertyAttributes::configurable,
      data: ptr::null_mut(),
    })
    .collect();
  check(unsafe {
    sys::napi_define_properties(env.raw(), object, descriptors.len(), descriptors.as_ptr())
  })
}

/// Defines one hidden property: not enumerable, writable or configurable.
pub fn define_hidden(env: &Env, object: Value, name: Value, value: Value) -> Result<()> {
  let descriptor = sys::napi_property_descriptor {
    utf8name: ptr::null(),
    name,
    method: None,
    getter: None,
    setter: None,
    value,
    attributes: sys::PropertyAttributes::default,
    data: ptr::null_mut(),
  };
  check(unsafe { sys::napi_define_properties(env.raw(), object, 1, &descriptor) })
}

pub fn symbol(env: &Env, description: &str) -> Result<Value> {
  let description = string(env, description)?;
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_create_symbol(env.raw(), description, &mut value) })?;
  Ok(value)
}

pub fn strict_equals(env: &Env, a: Value, b: Value) -> Result<bool> {
  let mut equal = false;
  check(unsafe { sys::napi_strict_equals(env.raw(), a, b, &mut equal) })?;
  Ok(equal)
}

/// Calls `func` with `this`, handing back either its result or what it threw.
pub fn call(
  env: &Env,
  this: Value,
  func: Value,
  args: &[Value],
) -> Result<std::result::Result<Value, Value>> {
  let mut result = ptr::null_mut();
  let status = unsafe {
    sys::napi_call_function(
      env.raw(),
      this,
      func,
      args.len(),
      args.as_ptr(),
      &mut result,
    )
  };
  Ok(catching(env.raw(), status)?.map(|()| result))
}

/// Creates an `Error` (or `TypeError`) with a `code` property.
pub fn error(env: &Env, type_error: bool, code: &str, message: &str) -> Result<Value> {
  let code = string(env, code)?;
  let message = string(env, message)?;
  let mut value = ptr::null_mut();
  let status = if type_error {
    unsafe { sys::napi_create_type_error(env.raw(), code, message, &mut value) }
  } else {
    unsafe { sys::napi_create_error(env.raw(), code, message, &mut value) }
  };
  check(status)?;
  Ok(value)
}

/// Throws an `Error` (or `TypeError`) with a `code` and returns the error
/// that lets it propagate.
pub fn throw(env: &Env, type_error: bool, code: &str, message: &str) -> Error {
  match error(env, type_error, code, message) {
    Ok(value) => match check(unsafe { sys::napi_throw(env.raw(), value) }) {
      Ok(()) => pending(),
      Err(e) => e,
    },
    Err(e) => e,
  }
}

/// A native function whose only context is a number (the data pointer
/// carries it, so there is nothing to allocate or free).
pub fn function_with_tag(
  env: &Env,
  name: &str,
  callback: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value,
  tag: usize,
) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe {
    sys::napi_create_function(
      env.raw(),
      name.as_ptr().cast(),
      name.len() as isize,
      Some(callback),
      tag as *mut c_void,
      &mut value,
    )
  })?;
  Ok(value)
}

/// `func.bind(this)`.
pub fn bind(env: &Env, func: Value, this: Value) -> Result<Value> {
  let bind = get(env, func, c"bind")?;
  match call(env, func, bind, &[this])? {
    Ok(bound) => Ok(bound),
    Err(thrown) => {
      check(unsafe { sys::napi_throw(env.raw(), thrown) })?;
      Err(pending())
    }
  }
}

/// What a native callback was called with.
pub struct CallbackInfo {
  pub this: Value,
  pub args: [Value; 3],
  pub tag: usize,
}

/// Reads `this`, up to three arguments and the tag of a [`function_with_tag`].
///
/// # Safety
/// `info` must be the callback info N-API passed to the running callback.
pub unsafe fn callback_info(env: &Env, info: sys::napi_callback_info) -> Result<CallbackInfo> {
  let mut args = [ptr::null_mut(); 3];
  let mut argc = args.len();
  let mut this = ptr::null_mut();
  let mut data = ptr::null_mut();
  check(unsafe {
    sys::napi_get_cb_info(
      env.raw(),
      info,
      &mut argc,
      args.as_mut_ptr(),
      &mut this,
      &mut data,
    )
  })?;
  let undefined = undefined(env)?;
  for arg in args.iter_mut().skip(argc) {
    *arg = undefined;
  }
  Ok(CallbackInfo {
    this,
    args,
    tag: data as usize,
  })
}

/// A reference that does not keep its object alive. The registry reaches its
/// JavaScript-side state through these, while that state itself hangs off
/// the registry object, so the garbage collector sees every cycle through it.
pub struct WeakRef {
  raw: sys::napi_ref,
}

impl WeakRef {
  pub fn new(env: &Env, value: Value) -> Result<Self> {
    let mut raw = ptr::null_mut();
    check(unsafe { sys::napi_create_reference(env.raw(), value, 0, &mut raw) })?;
    Ok(WeakRef { raw })
  }

  /// The object, or `None` once it has been collected.
  pub fn get(&self, env: &Env) -> Result<Option<Value>> {
    let mut value = ptr::null_mut();
    check(unsafe { sys::napi_get_reference_value(env.raw(), self.raw, &mut value) })?;
    Ok((!value.is_null()).then_some(value))
  }

  /// Releases the reference. Must be called on the JS thread that made it.
  pub fn delete(self, env: &Env) {
    unsafe { sys::napi_delete_reference(env.raw(), self.raw) };
  }
}

/// A promise and the means to settle it, used on the JS thread only.
pub struct Deferred {
  raw: sys::napi_deferred,
}

impl Deferred {
  pub fn new(env: &Env) -> Result<(Self, Value)> {
    let mut raw = ptr::null_mut();
    let mut promise = ptr::null_mut();
    check(unsafe { sys::napi_create_promise(env.raw(), &mut raw, &mut promise) })?;
    Ok((Deferred { raw }, promise))
  }

  pub fn resolve(self, env: &Env, value: Value) -> Result<()> {
    check(unsafe { sys::napi_resolve_deferred(env.raw(), self.raw, value) })
  }

  pub fn reject(self, env: &Env, reason: Value) -> Result<()> {
    check(unsafe { sys::napi_reject_deferred(env.raw(), self.raw, reason) })
  }
}

/// A promise already resolved with `value`.
pub fn resolved(env: &Env, value: Value) -> Result<Value> {
  let (deferred, promise) = Deferred::new(env)?;
  deferred.resolve(env, value)?;
  Ok(promise)
}

/// A promise already rejected with `reason`.
pub fn rejected(env: &Env, reason: Value) -> Result<Value> {
  let (deferred, promise) = Deferred::new(env)?;
  deferred.reject(env, reason)?;
  Ok(promise)
}

/// Clears an exception left pending by a failed step of work that must not
/// throw (listener delivery, settle callbacks).
pub fn clear_pending(env: &Env) {
  let mut pending = false;
  if unsafe { sys::napi_is_exception_pending(env.raw(), &mut pending) } == sys::Status::napi_ok
    && pending
  {
    let mut thrown = ptr::null_mut();
    unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut thrown) };
  }
}

/// Compiles and runs a script, returning its completion value.
pub fn run_script(env: &Env, source: &str) -> Result<Value> {
  let source = string(env, source)?;
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_run_script(env.raw(), source, &mut value) })?;
  Ok(value)
}

pub fn boolean(env: &Env, flag: bool) -> Result<Value> {
  let mut value = ptr::null_mut();
  check(unsafe { sys::napi_get_boolean(env.raw(), flag, &mut value) })?;
  Ok(value)
}

/// A new `Uint32Array` of `len` zeros and a pointer to its memory.
pub fn uint32_array(env: &Env, len: usize) -> Result<(Value, *mut u32)> {
  let mut data = ptr::null_mut();
  let mut buffer = ptr::null_mut();
  check(unsafe { sys::napi_create_arraybuffer(env.raw(), len * 4, &mut data, &mut buffer) })?;
  let mut array = ptr::null_mut();
  check(unsafe {
    sys::napi_create_typedarray(
      env.raw(),
      sys::TypedarrayType::uint32_array,
      len,
      buffer,
      0,
      &mut array,
    )
  })?;
  Ok((array, data.cast()))
}

/// A new `Float64Array` holding `values`.
pub fn float64_array(env: &Env, values: &[f64]) -> Result<Value> {
  let mut data: *mut std::ffi::c_void = ptr::null_mut();
  let mut buffer = ptr::null_mut();
  check(unsafe {
    sys::napi_create_arraybuffer(env.raw(), values.len() * 8, &mut data, &mut buffer)
  })?;
  if !values.is_empty() {
    // Fresh memory of exactly this size, not yet seen by any JavaScript.
    unsafe { ptr::copy_nonoverlapping(values.as_ptr(), data.cast::<f64>(), values.len()) };
  }
  let mut array = ptr::null_mut();
  check(unsafe {
    sys::napi_create_typedarray(
      env.raw(),
      sys::TypedarrayType::float64_array,
      values.len(),
      buffer,
      0,
      &mut array,
    )
  })?;
  Ok(array)
}

/// Where a `Uint32Array`'s numbers are and how many, looked up afresh (never
/// cached: script code could have replaced or detached the buffer since).
fn uint32_memory(env: &Env, array: Value) -> Result<(*mut u32, usize)> {
  let mut kind = 0;
  let mut len = 0usize;
  let mut data = ptr::null_mut();
  let mut buffer = ptr::null_mut();
  let mut offset = 0usize;
  check(unsafe {
    sys::napi_get_typedarray_info(
      env.raw(),
      array,
      &mut kind,
      &mut len,
      &mut data,
      &mut buffer,
      &mut offset,
    )
  })?;
  if kind != sys::TypedarrayType::uint32_array || data.is_null() {
    return Ok((ptr::null_mut(), 0));
  }
  Ok((data.cast(), len))
}

/// Copies `values` to the start of a `Uint32Array`.
pub fn write_uint32s(env: &Env, array: Value, values: &[u32]) -> Result<()> {
  if values.is_empty() {
    return Ok(());
  }
  let (data, len) = uint32_memory(env, array)?;
  if len < values.len() {
    return Err(Error::new(
      Status::InvalidArg,
      "typed array too short".to_owned(),
    ));
  }
  // The memory is V8's and stays put while `array` lives; no JavaScript runs
  // during the copy.
  unsafe { ptr::copy_nonoverlapping(values.as_ptr(), data, values.len()) };
  Ok(())
}

/// The first `count` numbers of a `Uint32Array`.
pub fn read_uint32s(env: &Env, array: Value, count: usize) -> Result<Vec<u32>> {
  if count == 0 {
    return Ok(Vec::new());
  }
  let (data, len) = uint32_memory(env, array)?;
  if len < count {
    return Err(Error::new(
      Status::InvalidArg,
      "typed array too short".to_owned(),
    ));
  }
  Ok(unsafe { std::slice::from_raw_parts(data, count) }.to_vec())
}

pub fn to_f64(env: &Env, value: Value) -> Result<f64> {
  let mut number = 0.0;
  check(unsafe { sys::napi_get_value_double(env.raw(), value, &mut number) })?;
  Ok(number)
}

pub fn to_bool(env: &Env, value: Value) -> Result<bool> {
  let mut flag = false;
  check(unsafe { sys::napi_get_value_bool(env.raw(), value, &mut flag) })?;
  Ok(flag)
}

/// Reads a JavaScript string (known to be one) as UTF-8 and passes it to `f`.
pub fn with_str<R>(env: &Env, value: Value, f: impl FnOnce(&str) -> R) -> Result<R> {
  try_with_str(env, value, f)?
    .ok_or_else(|| Error::new(Status::StringExpected, "expected a string".to_owned()))
}

/// Reads a string as UTF-8 and passes it to `f`; `None` when the value is
/// not a string. Strings of typical id length are read into a stack buffer.
pub fn try_with_str<R>(env: &Env, value: Value, f: impl FnOnce(&str) -> R) -> Result<Option<R>> {
  let mut buf = [0u8; INLINE_STR];
  let mut len = 0usize;
  let status = unsafe {
    sys::napi_get_value_string_utf8(
      env.raw(),
      value,
      buf.as_mut_ptr().cast(),
      INLINE_STR,
      &mut len,
    )
  };
  if status == sys::Status::napi_string_expected {
    return Ok(None);
  }
  check(status)?;
  // N-API never splits a character, so a string was cut short only if the
  // buffer lacked room for one more character of up to four bytes.
  if len + 4 < INLINE_STR {
    let text = std::str::from_utf8(&buf[..len])
      .map_err(|e| Error::new(Status::StringExpected, e.to_string()))?;
    return Ok(Some(f(text)));
  }
  let mut full = 0usize;
  check(unsafe {
    sys::napi_get_value_string_utf8(env.raw(), value, ptr::null_mut(), 0, &mut full)
  })?;
  let mut heap = vec![0u8; full + 1];
  check(unsafe {
    sys::napi_get_value_string_utf8(
      env.raw(),
      value,
      heap.as_mut_ptr().cast(),
      full + 1,
      &mut len,
    )
  })?;
  heap.truncate(len);
  let text =
    String::from_utf8(heap).map_err(|e| Error::new(Status::StringExpected, e.to_string()))?;
  Ok(Some(f(&text)))
}
