import numpy as np
import pytest

from emotf.features import denoise

N_FFT, WIN, HOP, SR = 1024, 743, 186, 16000


@pytest.mark.parametrize("n", [16000, 48001, 1600, 800])  # scipy shortens its window below 743 samples
def test_stft_and_istft_are_scipys(seed, n):
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(seed).standard_normal(n)
    _, _, ref = signal.stft(x, nperseg=WIN, noverlap=WIN - HOP, nfft=N_FFT, padded=False)
    ours = denoise.stft(x, N_FFT, WIN, HOP)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.complex128
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    _, back = signal.istft(ref, nperseg=WIN, noverlap=WIN - HOP, nfft=N_FFT)
    ours_back = denoise.istft(ref, N_FFT, WIN, HOP)
    assert ours_back.shape == back.shape
    np.testing.assert_allclose(ours_back, back, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours_back[:n], x[:len(ours_back)][:n], atol=1e-9)  # a round trip gives x back


def test_float32_input_keeps_float32_precision(seed):
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(seed).standard_normal(5000).astype(np.float32)
    _, _, ref = signal.stft(x, nperseg=WIN, noverlap=WIN - HOP, nfft=N_FFT, padded=False)
    ours = denoise.stft(x, N_FFT, WIN, HOP)
    assert ours.dtype == ref.dtype == np.complex64
    np.testing.assert_allclose(ours, ref, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("half_freq,half_time", [(16, 4), (1, 4), (3, 1), (2, 5), (40, 9)])
def test_separable_smoothing_is_the_2d_triangle_convolution(seed, half_freq, half_time):
    """noisereduce convolves the mask with outer(triangle, triangle) ("same", zeros outside) by FFT."""
    signal = pytest.importorskip("scipy.signal")
    import cv2

    mask = (np.random.default_rng(seed).random((60, 25)) > 0.6) * 0.9 + 0.1
    kernel = np.outer(denoise._triangle(half_freq), denoise._triangle(half_time))
    ref = signal.fftconvolve(mask, kernel, mode="same")
    ours = cv2.sepFilter2D(mask, -1, denoise._triangle(half_time), denoise._triangle(half_freq),
                           borderType=cv2.BORDER_CONSTANT)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert np.isclose(kernel.sum(), 1.0) and kernel[half_freq, half_time] == kernel.max()


def _noisy_burst(seed, seconds=2.0, snr_db=10.0):
    """A broadband burst (0.5-1.5 s) over a steady background ``snr_db`` below it: (clean, noisy, background)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    clean = 0.2 * rng.standard_normal(len(t)) * (t > 0.5) * (t < 1.5)
    noise = rng.standard_normal(len(t)) * 0.2 * 10 ** (-snr_db / 20)
    return clean.astype(np.float32), (clean + noise).astype(np.float32), noise.astype(np.float32)


def test_equals_noisereduce_stationary_gate(seed):
    noisereduce = pytest.importorskip("noisereduce")
    for snr in (0.0, 10.0, 30.0):
        _, x, noise = _noisy_burst(seed, snr_db=snr)
        profile = noise[:8000]
        ref = np.asarray(noisereduce.reduce_noise(
            y=x, sr=SR, y_noise=profile, stationary=True, prop_decrease=0.9, n_std_thresh_stationary=2.0,
            n_fft=N_FFT, win_length=WIN, hop_length=HOP, n_jobs=1, padding=N_FFT, chunk_size=len(x)))
        ours = denoise.stationary_gate(x, profile, SR, n_fft=N_FFT, win_length=WIN, hop_length=HOP, n_std=2.0,
                                       prop_decrease=0.9, padding=N_FFT)
        assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6 * np.abs(ref).max())


def test_gate_turns_the_background_down_and_keeps_the_signal(seed):
    clean, x, noise = _noisy_burst(seed, snr_db=20.0)
    y = denoise.stationary_gate(x, noise[:8000], SR, n_fft=N_FFT, win_length=WIN, hop_length=HOP, padding=N_FFT)
    rms = lambda a: float(np.sqrt(np.mean(a ** 2)))  # noqa: E731
    background, burst = slice(0, 6000), slice(10000, 22000)
    assert rms(y[background]) < 0.2 * rms(x[background])  # bins at the noise floor: turned down by 90 %
    assert 0.9 < rms(y[burst]) / rms(clean[burst]) < 1.1  # bins well above it: kept


def test_short_input(seed):
    x = np.random.default_rng(seed).standard_normal(500).astype(np.float32)
    y = denoise.stationary_gate(x, x, SR, n_fft=N_FFT, win_length=WIN, hop_length=HOP, padding=N_FFT)
    assert y.shape == x.shape and np.all(np.isfinite(y))
