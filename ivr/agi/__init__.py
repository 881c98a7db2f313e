"""The Asterisk back end: a FastAGI server driving the same step driver as the Twilio webhooks.

`plan` renders the flow's actions as an AGI plan (sound files to play, keys to collect, a Dial);
`channel` carries a plan out over one FastAGI connection; `server` is `meterline agi`;
`sounds` names the sound files a prompt is made of, and `render` makes them with a TTS command.
"""
