"""kirzl.Error and its subclasses: the right built-in base, the C++ message, the code."""
import pytest

import kirzl


def test_hierarchy():
    assert issubclass(kirzl.InvalidArgumentError, kirzl.Error) and issubclass(kirzl.InvalidArgumentError, ValueError)
    assert issubclass(kirzl.UnsupportedError, NotImplementedError)
    assert issubclass(kirzl.CommTimeoutError, TimeoutError)
    assert issubclass(kirzl.IoError, OSError)
    assert issubclass(kirzl.Error, Exception)


def test_invalid_argument_message_is_cpp_what():
    with pytest.raises(ValueError) as info:
        kirzl.nn.Linear(784, 256)(kirzl.zeros(128, 783))
    e = info.value
    assert isinstance(e, kirzl.InvalidArgumentError) and isinstance(e, kirzl.Error)
    assert str(e).startswith("kirzl::Error [InvalidArgument] linear:")
    assert "783" in str(e) and "784" in str(e)
    assert e.code == kirzl.ErrorCode.InvalidArgument
    assert str(e) == "kirzl::Error [InvalidArgument] " + e.message


def test_io_error(tmp_path):
    with pytest.raises(OSError) as info:
        kirzl.io.load_safetensors(str(tmp_path / "missing.safetensors"))
    assert isinstance(info.value, kirzl.IoError) and info.value.code == kirzl.ErrorCode.Io


def test_unsupported():
    with pytest.raises(NotImplementedError):
        kirzl.nn.ModuleList().forward(kirzl.zeros(1))


def test_bad_dtype_name():
    with pytest.raises(kirzl.InvalidArgumentError):
        kirzl.zeros(2, dtype="complex64")


def test_timeout_is_timeout_error():
    import threading
    comms = kirzl.comm.make_in_process_group(2, timeout=0.2)
    with pytest.raises(TimeoutError) as info:  # rank 1 never arrives
        kirzl.all_reduce(kirzl.ones(4), group=comms[0])
    assert isinstance(info.value, kirzl.CommTimeoutError) and "all_reduce" in str(info.value)
    del threading
