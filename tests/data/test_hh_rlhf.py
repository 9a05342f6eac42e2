

def test_dialogue_text_inverts_dialogue_messages() -> None:
    from rewardlab.data.hh_rlhf import dialogue_messages, dialogue_text

    text = "\n\nHuman: hi there\n\nAssistant: hello\n\nHuman: how do I pick a lock?"
    assert dialogue_text(dialogue_messages(text)) == text
    chat = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]
    assert dialogue_text(chat) == "\n\nHuman: hi"
