// Rill upload page (/upload): a resumable tus upload to /api/v1/uploads with tus-js-client
// (Authorization: Bearer <admin token>; title, description, tags, visibility and the file's
// name in Upload-Metadata; sha1 checksums are not sent by browsers' tus-js-client). An upload
// interrupted by a network error retries and resumes from the server's offset; Pause/Resume
// do the same by hand, and a reload of the page resumes the same file (tus-js-client keeps
// its URL in localStorage). Then the page follows GET /api/v1/uploads/<id> until the video is
// ready or refused. window.rillUpload mirrors the state for tests and tools.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $('form');
  const startButton = $('start');
  const pauseButton = $('pause');
  const bar = $('progress');
  const statusLine = $('status');
  const watch = $('watch');
  const state = { state: 'idle', url: null, offset: 0, length: 0, upload: null, error: null };
  window.rillUpload = state;
  let upload = null;
  let paused = false;

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle('error', !!isError);
  }

  function token() {
    return $('token').value.trim();
  }

  async function follow(url) {
    // Processing: percent and ETA from the upload's JSON.
    for (;;) {
      let json;
      try {
        const response = await fetch(url, { headers: { Authorization: 'Bearer ' + token() } });
        json = await response.json();
        if (!response.ok) throw new Error(json.error || response.statusText);
      } catch (e) {
        setStatus('Cannot read the upload: ' + e.message, true);
        return;
      }
      state.upload = json;
      bar.value = json.progress || 0;
      if (json.state === 'processing') {
        const eta = json.eta_s != null ? ', about ' + json.eta_s + ' s left' : '';
        setStatus('Processing: ' + json.progress.toFixed(0) + '%' + eta + '.');
      } else if (json.state === 'ready') {
        state.state = 'ready';
        setStatus('Ready.');
        watch.href = '/watch/' + json.video_id;
        watch.textContent = location.origin + '/watch/' + json.video_id;
        return;
      } else if (json.state === 'failed') {
        state.state = 'failed';
        state.error = json.error;
        setStatus('Refused: ' + json.error, true);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const file = $('file').files[0];
    if (!file || !window.tus) return;
    const metadata = {
      filename: file.name,
      filetype: file.type,
      title: $('title').value.trim() || file.name.replace(/\.[^.]*$/, ''),
      description: $('description').value,
      tags: $('tags').value.trim(),
      visibility: $('visibility').value,
    };
    state.state = 'uploading';
    state.length = file.size;
    upload = new tus.Upload(file, {
      endpoint: '/api/v1/uploads',
      headers: { Authorization: 'Bearer ' + token() },
      metadata,
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      removeFingerprintOnSuccess: true,
      onError(error) {
        state.state = 'error';
        state.error = String(error);
        setStatus('Upload failed: ' + error, true);
        startButton.disabled = false;
        pauseButton.disabled = true;
      },
      onProgress(sent, total) {
        state.offset = sent;
        bar.value = total ? (sent * 100) / total : 0;
        setStatus('Uploading: ' + ((sent * 100) / total).toFixed(1) + '% of ' + (total / 1e6).toFixed(1) + ' MB.');
      },
      onSuccess() {
        state.state = 'processing';
        state.url = upload.url;
        pauseButton.disabled = true;
        follow(upload.url);
      },
    });
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
      startButton.disabled = true;
      pauseButton.disabled = false;
    });
  });

  pauseButton.addEventListener('click', () => {
    if (!upload) return;
    paused = !paused;
    if (paused) {
      upload.abort();
      pauseButton.textContent = 'Resume';
      setStatus('Paused.');
    } else {
      upload.start();
      pauseButton.textContent = 'Pause';
    }
  });
})();
